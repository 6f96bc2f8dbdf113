"""tools/gen_text_lexicon.py --method clip: the lexicon of a tiny CLIP (random weights saved as a
state dict and as a TorchScript archive like OpenAI's) is its text encoder's normalised
embedding of every prompt, and the M3A head takes its text width from that file."""
import numpy as np
import pytest
import torch

from m3a.config import get_cfg
from m3a.models import build_model
from m3a.models.clip.model import CLIP, ClipSpec, spec_of_state
from m3a.models.clip.tokenizer import tokenize
from m3a.prep.text_embedding import DEFAULT_CLIP_PROMPT, TextLexiconError, build_text_lexicon, clip_prompts
from m3a.utils.lexicon import load_text_lexicon
from tests.tools.conftest import run_tool

# A tiny CLIP whose head counts follow OpenAI's rule (width / 64).
TINY = ClipSpec(embed_dim=24, image_resolution=16, vision_layers=1, vision_width=64, vision_patch_size=8,
                context_length=77, vocab_size=49408, transformer_width=64, transformer_heads=1,
                transformer_layers=2)
NAMES = ["adult+female+singing", "dog_barking", "Rain Storm"]


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory):
    """The tiny CLIP, its weights as a plain state dict and as a TorchScript archive."""
    root = tmp_path_factory.mktemp("tiny_clip")
    torch.manual_seed(0)
    model = CLIP(TINY).eval()
    with torch.no_grad():  # a random, non-trivial text LayerNorm
        model.ln_final.weight.uniform_(0.5, 1.5)
    state_path = str(root / "tiny-clip-state.pt")
    torch.save(model.state_dict(), state_path)
    for name, value in (("input_resolution", 16), ("context_length", 77), ("vocab_size", 49408)):
        model.register_buffer(name, torch.tensor(value))
    archive = str(root / "ViT-tiny.pt")
    torch.jit.save(torch.jit.trace_module(model, {"encode_text": tokenize(["a"])}), archive)
    return model, state_path, archive


def expected_rows(model, prompts):
    with torch.no_grad():
        emb = model.encode_text(tokenize(prompts)).double()
    return (emb / emb.norm(dim=-1, keepdim=True)).numpy()


def test_spec_is_read_off_the_weights(tiny_clip):
    model, _, _ = tiny_clip
    assert spec_of_state(model.state_dict()) == TINY


def test_prompts_fill_the_template_with_the_names_words():
    assert clip_prompts(NAMES) == ["a video of a person adult female singing.", "a video of a person dog barking.",
                                   "a video of a person rain storm."]
    assert DEFAULT_CLIP_PROMPT == "a video of a person {}."
    with pytest.raises(TextLexiconError, match="must contain {}"):
        clip_prompts(NAMES, "no slot")


def test_tool_lexicon_equals_the_normalised_text_embeddings_and_sets_the_head_width(tiny_clip, tmp_path):
    model, state_path, archive = tiny_clip
    names = tmp_path / "categories-v1.txt"
    names.write_text("\n".join(NAMES) + "\n")
    out = tmp_path / "mmit-m3a" / "text-lexicon-v1.npz"
    out.parent.mkdir()
    proc = run_tool("gen_text_lexicon", "--class-names", names, "--out", out, "--method", "clip",
                    "--clip-weights", archive, "--prompt", "a photo of {}")
    assert "3 classes x 24 dims" in proc.stdout
    lexicon = load_text_lexicon(str(out), 3)
    want = expected_rows(model, ["a photo of adult female singing", "a photo of dog barking", "a photo of rain storm"])
    assert np.abs(lexicon - want).max() <= 1e-6
    np.testing.assert_allclose(np.linalg.norm(lexicon, axis=1), 1.0, atol=1e-12)
    # The plain state dict gives the same lexicon (default prompt here).
    in_process = build_text_lexicon(NAMES, method="clip", clip_weights=state_path)
    assert np.abs(in_process - expected_rows(model, clip_prompts(NAMES))).max() <= 1e-6
    # The M3A head's text learner takes its input width from the file (M3A.TEXT_VEC_SIZE 0).
    cfg = get_cfg()
    cfg.DATA.PATH_TO_DATA_DIR, cfg.MODEL.NUM_CLASSES, cfg.LOG_MODEL_INFO = str(tmp_path), 3, False
    cfg.MODEL.BASE_WIDTH, cfg.MODEL.STAGE_BLOCKS, cfg.MODEL.DEPTH = 4, [1, 1, 1, 1], 18
    cfg.M3A.MODE, cfg.M3A.MODAL_TYPE, cfg.M3A.MODAL_JOINT_TYPE, cfg.M3A.HIDDEN_LAYER = "TRSFMR", "TEXT", "NONE", 8
    head = build_model(cfg).head.m3a_joint_learning
    assert head.text_lexicon.shape == (3, 24)
    first = next(p for p in head.multi_modal["TEXT"].parameters() if p.dim() == 2)
    assert 24 in first.shape


def test_missing_or_bad_weights_are_one_line_errors(tmp_path):
    names = tmp_path / "n.txt"
    names.write_text("a\n")
    with pytest.raises(TextLexiconError, match=r"needs a local OpenAI CLIP file \(--clip-weights\)"):
        build_text_lexicon(["a"], method="clip")
    torch.save({"weight": torch.zeros(2)}, tmp_path / "other.pt")
    proc = run_tool("gen_text_lexicon", "--class-names", names, "--out", tmp_path / "t.npz", "--method", "clip",
                    "--clip-weights", tmp_path / "other.pt", check=False)
    assert proc.returncode == 2 and "not a CLIP ViT state dict in OpenAI's layout" in proc.stderr
    assert "Traceback" not in proc.stderr
