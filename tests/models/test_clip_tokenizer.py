"""CLIP's BPE tokenizer: ids equal OpenAI's (checked by hand from the merges file and against ids
that OpenAI's tokenizer gives), unicode, start/end tokens, padding and the 77-token context."""
import gzip

import pytest
import torch

from m3a.models.clip.tokenizer import BPE_PATH, END_ID, START_ID, default_tokenizer, tokenize

# Ids of OpenAI's CLIP tokenizer (openai-clip 1.0.1 simple_tokenizer, with ftfy) for these texts,
# without the start/end tokens.
OPENAI_IDS = {
    "A video of abseiling": [320, 1455, 539, 596, 567, 3299],
    "A video of air drumming": [320, 1455, 539, 1922, 35480],
    "A video of Approaching something with your camera": [320, 1455, 539, 12164, 2006, 593, 695, 3934],
    "Pretending to put something next to something": [21306, 531, 1983, 2006, 1131, 531, 2006],
    "Moving something (without) it": [3584, 2006, 263, 2193, 264, 585],
    "café naïve": [15304, 1097, 35689, 563],
    "東京 🎉": [48338, 21078, 361, 3986],
    "It's 2024! Don't &amp; go": [585, 568, 273, 271, 273, 275, 256, 847, 713, 261, 861],
}


def _merge_id(symbol: str) -> int:
    """Id of the merge that produces ``symbol``: 512 byte symbols come first, then one id per
    merge line of the file (after its header)."""
    with gzip.open(BPE_PATH, "rt", encoding="utf-8") as f:
        merges = f.read().split("\n")[1:]
    return 512 + [m.replace(" ", "") for m in merges].index(symbol)


def test_ids_hand_checked_from_the_merges():
    # "a photo of a dog." -> a</w> photo</w> of</w> a</w> dog</w> .</w>
    ids = tokenize("a photo of a dog.")[0]
    a, dot = 256 + ord("a") - ord("!"), 256 + ord(".") - ord("!")  # single printable bytes + </w>
    expected = [START_ID, a, _merge_id("photo</w>"), _merge_id("of</w>"), a, _merge_id("dog</w>"), dot, END_ID]
    assert ids[: len(expected)].tolist() == expected == [49406, 320, 1125, 539, 320, 1929, 269, 49407]
    assert ids[len(expected):].eq(0).all()


@pytest.mark.parametrize("text", sorted(OPENAI_IDS))
def test_ids_equal_openai_clip(text):
    ids = tokenize([text])
    assert ids.shape == (1, 77) and ids.dtype == torch.long
    n = len(OPENAI_IDS[text])
    assert ids[0, : n + 2].tolist() == [START_ID] + OPENAI_IDS[text] + [END_ID]
    assert ids[0, n + 2:].eq(0).all()


def test_case_and_whitespace_do_not_matter_and_batches_stack():
    ids = tokenize(["  A   VIDEO of\tabseiling ", "a video of abseiling"])
    assert torch.equal(ids[0], ids[1])


def test_decode_round_trips():
    tokenizer = default_tokenizer()
    assert tokenizer.decode(tokenizer.encode("café naïve 東京")) == "café naïve 東京 "


def test_long_text_is_an_error_or_truncated_to_77():
    text = "word " * 100
    with pytest.raises(ValueError, match="more than the context length 77"):
        tokenize(text)
    ids = tokenize(text, truncate=True)[0]
    assert ids.shape == (77,) and ids[0] == START_ID and ids[-1] == END_ID
    assert ids[1:-1].eq(default_tokenizer().encode("word")[0]).all()
    # 75 tokens + start + end fit exactly.
    assert tokenize("word " * 75)[0, -1] == END_ID
