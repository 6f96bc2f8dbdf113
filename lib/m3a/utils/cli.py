"""Command lines of the tools: options and positional arguments in any order, then config overrides.

A tool that takes ``KEY VALUE`` config overrides (``DATA.PATH_TO_DATA_DIR demo_data``) reads them
from the first token written like a config key (upper case, dot-separated: ``NUM_GPUS``,
``SOLVER.BASE_LR``) that is not an existing file; the config loader then checks the keys and
names an unknown one. Options may come before, between or after the positional arguments and
also after the overrides (``--out DIR`` at the end works); only a positional argument after the
overrides is refused, with a usage message that says so.
"""
import argparse
import os
import re
from typing import Dict, List, Sequence, Tuple

_KEY_LIKE = re.compile(r"^[A-Z][A-Z0-9_]*(\.[A-Z][A-Z0-9_]*)*$")


def looks_like_config_key(token: str) -> bool:
    """Whether ``token`` is written like a config key (``NUM_GPUS``, ``SOLVER.BASE_LR``)."""
    return bool(_KEY_LIKE.match(token))


def _option_arity(parser: argparse.ArgumentParser) -> Dict[str, bool]:
    """Option string -> whether it takes a value, for every option of ``parser``."""
    return {opt: action.nargs != 0 for action in parser._actions for opt in action.option_strings}


def split_overrides(parser: argparse.ArgumentParser, argv: Sequence[str]) -> Tuple[List[str], List[str]]:
    """Split ``argv`` into the arguments for ``parser`` and the trailing ``KEY VALUE`` overrides.

    Known options (with their values) are kept for the parser wherever they appear; the
    overrides start at the first config key and continue in pairs. A token after the first key
    that is neither an option nor a config key stops with ``parser.error``.
    """
    arity = _option_arity(parser)
    head: List[str] = []
    overrides: List[str] = []
    i = 0
    while i < len(argv):
        token = argv[i]
        name = token.split("=", 1)[0]
        if token.startswith("-") and name in arity:
            width = 2 if arity[name] and "=" not in token else 1
            head.extend(argv[i : i + width])
            i += width
        elif looks_like_config_key(token) and (overrides or not os.path.exists(token)):
            if i + 1 >= len(argv):
                parser.error(f"config override {token} has no value (give KEY VALUE pairs)")
            overrides.extend(argv[i : i + 2])
            i += 2
        elif overrides:
            parser.error(f"'{token}' after the KEY VALUE overrides is not a config key: put positional "
                         "arguments before the first KEY VALUE pair")
        else:
            head.append(token)
            i += 1
    return head, overrides


def parse_with_overrides(parser: argparse.ArgumentParser, argv: Sequence[str],
                         dest: str = "opts") -> argparse.Namespace:
    """``parser.parse_intermixed_args`` on the options and positionals of ``argv``; the
    ``KEY VALUE`` overrides go to ``args.<dest>``. ``parser`` may declare a ``dest`` positional
    (``nargs='*'``) so that its usage shows the overrides; anything the parser puts there is
    refused."""
    head, overrides = split_overrides(parser, argv)
    args = parser.parse_intermixed_args(head)
    stray = getattr(args, dest, None) or []
    if stray:
        parser.error(f"unexpected argument '{stray[0]}': KEY VALUE overrides start with a config key "
                     "such as DATA.PATH_TO_DATA_DIR")
    setattr(args, dest, overrides)
    return args
