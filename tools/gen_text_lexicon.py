#!/usr/bin/env python3
"""Build the text lexicon: one vector per class name (GloVe 6B 300-d, BERT, CLIP, or hashed fallback).

Examples:
  python tools/gen_text_lexicon.py --class-names data/mmit/categories-v1.txt \\
      --out data/mmit/mmit-m3a/text-lexicon-v1.npz --glove data/glove/glove.6B.zip
  python tools/gen_text_lexicon.py --class-names demo_data/categories-demo.txt \\
      --out demo_data/mmit-m3a/text-lexicon-demo.npz --method hashed
Names are split on '+', '/', '_' and spaces and the word vectors averaged; words missing from
GloVe are reported. --method auto uses GloVe when --glove is given, else the hashed fallback
(deterministic word vectors, no pretrained knowledge: demos only). --method bert needs
--bert-model (a local sentence-transformers/transformers model folder). --method clip encodes
--prompt (default "a video of a person {}.", {} = the name's words) with CLIP's text encoder and
L2-normalises it; --clip-weights is a local OpenAI CLIP file (ViT-B-16.pt as released, or a state
dict in its layout), read without running its code; nothing is downloaded.
"""
import argparse
import logging
import sys


from m3a.utils.lexicon import save_text_lexicon
from m3a.utils.class_names import read_class_names
from m3a.prep.text_embedding import DEFAULT_CLIP_PROMPT, METHODS, TextLexiconError, build_text_lexicon


def parse_args(argv=None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--class-names", required=True, help="category names, one per line in label order")
    parser.add_argument("--out", required=True,
                        help="output .npz (array 'lexicon'), or .pkl (published format)")
    parser.add_argument("--glove", default=None, help="GloVe vectors: glove.6B.300d.txt or glove.6B.zip")
    parser.add_argument("--method", choices=METHODS, default="auto", help="embedding method (default auto)")
    parser.add_argument("--dim", type=int, default=300, help="vector size for glove/hashed (default 300)")
    parser.add_argument("--bert-model", default=None, help="local model folder for --method bert")
    parser.add_argument("--clip-weights", default=None,
                        help="local OpenAI CLIP file for --method clip (TorchScript .pt or state dict)")
    parser.add_argument("--prompt", default=DEFAULT_CLIP_PROMPT,
                        help=f"prompt template of --method clip, {{}} = class name (default {DEFAULT_CLIP_PROMPT!r})")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    """Embed the names and write the lexicon."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        names = read_class_names(args.class_names)
        lexicon = build_text_lexicon(names, args.glove, args.method, args.dim, bert_model=args.bert_model,
                                     clip_weights=args.clip_weights, prompt=args.prompt)
        save_text_lexicon(args.out, lexicon)
    except (TextLexiconError, FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"wrote {args.out}: {lexicon.shape[0]} classes x {lexicon.shape[1]} dims")
    return 0


if __name__ == "__main__":
    sys.exit(main())
