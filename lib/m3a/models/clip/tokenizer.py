"""CLIP's byte-level BPE tokenizer: ``tokenize(texts) -> LongTensor (N, 77)``.

The token ids equal those of OpenAI's CLIP tokenizer for any text:

- text is cleaned (``ftfy.fix_text`` when ftfy is installed, HTML entities unescaped twice,
  whitespace runs collapsed), lower-cased and split into words, contractions, single digits and
  punctuation runs;
- each piece's UTF-8 bytes map to printable characters (the GPT-2 byte alphabet), the last one
  marked with ``</w>``, and adjacent symbols merge by the rank of the pair in the merges list
  (``bpe_simple_vocab_16e6.txt.gz``: the first 48,894 merges after its header line);
- ids: 256 byte symbols, the same with ``</w>``, one per merge, then ``<|startoftext|>`` (49406)
  and ``<|endoftext|>`` (49407): 49,408 in all.

``tokenize`` wraps every text in start/end tokens and zero-pads to the context length (77); a
longer text is an error unless ``truncate=True`` (then it is cut and ends with the end token).
The merges file is OpenAI's (MIT licence; notice in ``BPE_LICENSE.txt`` next to it).
"""
import functools
import gzip
import html
import logging
import os
from typing import Dict, Iterable, List, Sequence, Tuple, Union

import regex
import torch

logger = logging.getLogger(__name__)

BPE_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "bpe_simple_vocab_16e6.txt.gz")
CONTEXT_LENGTH = 77
START, END = "<|startoftext|>", "<|endoftext|>"
START_ID, END_ID = 49406, 49407
# Merges used from the file (CLIP's vocabulary size 49408 = 2 * 256 + merges + 2 special tokens).
NUM_MERGES = 49152 - 256 - 2
_PIECES = regex.compile(
    r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+""",
    regex.IGNORECASE,
)


def byte_alphabet() -> Dict[int, str]:
    """Byte -> printable character, in vocabulary order: the printable Latin-1 bytes (mapped to
    themselves) first, then the other 68 bytes (mapped to code points 256, 257, ...)."""
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) \
        + list(range(ord("®"), ord("ÿ") + 1))
    table = {byte: chr(byte) for byte in keep}
    for extra, byte in enumerate(b for b in range(256) if b not in table):
        table[byte] = chr(256 + extra)
    return table


def _pairs(word: Tuple[str, ...]) -> set:
    return {(a, b) for a, b in zip(word, word[1:])}


def clean(text: str) -> str:
    """ftfy fix (when installed), HTML unescape (twice), whitespace collapsed, lower case."""
    try:
        import ftfy

        text = ftfy.fix_text(text)
    except ImportError:
        _warn_no_ftfy()
    text = html.unescape(html.unescape(text)).strip()
    return regex.sub(r"\s+", " ", text).strip().lower()


@functools.lru_cache(maxsize=1)
def _warn_no_ftfy() -> None:
    logger.warning("ftfy is not installed: text is not mojibake-fixed before tokenizing "
                   "(ids differ from CLIP's only for text that ftfy would change)")


class Tokenizer:
    """CLIP's BPE over the merges file ``path``."""

    def __init__(self, path: str = BPE_PATH) -> None:
        with gzip.open(path, "rt", encoding="utf-8") as f:
            lines = f.read().split("\n")[1: NUM_MERGES + 1]
        merges = [tuple(line.split()) for line in lines]
        if len(merges) != NUM_MERGES or any(len(m) != 2 for m in merges):
            raise ValueError(f"{path}: expected {NUM_MERGES} merge lines of two symbols after the header")
        self.byte_char = byte_alphabet()
        symbols = list(self.byte_char.values())
        symbols += [s + "</w>" for s in symbols] + ["".join(m) for m in merges] + [START, END]
        self.encoder = {s: i for i, s in enumerate(symbols)}
        self.decoder = {i: s for s, i in self.encoder.items()}
        self.ranks = {m: i for i, m in enumerate(merges)}
        self.cache = {START: START, END: END}

    def bpe(self, piece: str) -> str:
        """Space-separated BPE symbols of one piece (already mapped to the byte alphabet)."""
        if piece in self.cache:
            return self.cache[piece]
        word = tuple(piece[:-1]) + (piece[-1] + "</w>",)
        while len(word) > 1:
            pair = min(_pairs(word), key=lambda p: self.ranks.get(p, float("inf")))
            if pair not in self.ranks:
                break
            merged, i = [], 0
            while i < len(word):
                if i + 1 < len(word) and (word[i], word[i + 1]) == pair:
                    merged.append(word[i] + word[i + 1])
                    i += 2
                else:
                    merged.append(word[i])
                    i += 1
            word = tuple(merged)
        self.cache[piece] = " ".join(word)
        return self.cache[piece]

    def encode(self, text: str) -> List[int]:
        """Token ids of ``text`` (no start/end tokens)."""
        ids: List[int] = []
        for piece in _PIECES.findall(clean(text)):
            mapped = "".join(self.byte_char[b] for b in piece.encode("utf-8"))
            ids.extend(self.encoder[s] for s in self.bpe(mapped).split(" "))
        return ids

    def decode(self, ids: Iterable[int]) -> str:
        """Text of token ids, as CLIP decodes it (``</w>`` becomes a space)."""
        byte_of = {c: b for b, c in self.byte_char.items()}
        chars = "".join(self.decoder[int(i)] for i in ids)
        return bytearray(byte_of[c] for c in chars).decode("utf-8", errors="replace").replace("</w>", " ")


@functools.lru_cache(maxsize=1)
def default_tokenizer() -> Tokenizer:
    """The tokenizer of the packaged merges file (built once)."""
    return Tokenizer()


def tokenize(texts: Union[str, Sequence[str]], context_length: int = CONTEXT_LENGTH,
             truncate: bool = False) -> torch.LongTensor:
    """Token ids (N, context_length): start token, the text's tokens, end token, zeros.

    A text longer than the context raises ValueError naming it, unless ``truncate`` (then it is
    cut to ``context_length`` tokens, the last being the end token).
    """
    if isinstance(texts, str):
        texts = [texts]
    tokenizer = default_tokenizer()
    out = torch.zeros(len(texts), context_length, dtype=torch.long)
    for row, text in enumerate(texts):
        ids = [START_ID] + tokenizer.encode(text) + [END_ID]
        if len(ids) > context_length:
            if not truncate:
                raise ValueError(f"text {text[:60]!r} has {len(ids)} tokens, more than the context length "
                                 f"{context_length}")
            ids = ids[:context_length - 1] + [END_ID]
        out[row, : len(ids)] = torch.tensor(ids)
    return out
