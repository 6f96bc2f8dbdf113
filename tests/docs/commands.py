"""The shell commands the documentation shows: code blocks of the docs and examples of every --help."""
import json
import os
import re
import subprocess
import sys
from typing import Dict, List

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DOCS = ("README.md", "GETTING_STARTED.md", "PREPARATION.md", "MODEL_ZOO.md", "ADDING_A_MODEL.md")
_FENCE = re.compile(r"^```(\w*)\s*$")
# A line of a code block that is a command (not output, a file tree or Python).
_COMMAND = re.compile(r"^(python|torchrun|make|sed|cp|sort|wc|sha256sum|tensorboard|run_net\.py)\b")


def join_lines(lines: List[str]) -> List[str]:
    """Join backslash-continued lines; drop blank lines and whole-line comments."""
    out: List[str] = []
    pending = ""
    for line in lines:
        line = line.rstrip()
        if line.endswith("\\"):
            pending += line[:-1].strip() + " "
            continue
        line = (pending + line.strip()).strip()
        pending = ""
        if line and not line.startswith("#"):
            out.append(line)
    return out


def doc_commands() -> Dict[str, List[str]]:
    """{doc file: [command, ...]} from the fenced code blocks (no language, bash or sh)."""
    found: Dict[str, List[str]] = {}
    for doc in DOCS:
        block, lang, commands = None, "", []
        for line in open(os.path.join(ROOT, doc), encoding="utf-8"):
            fence = _FENCE.match(line.strip())
            if fence and block is None:
                block, lang = [], fence.group(1)
            elif line.strip() == "```" and block is not None:
                if lang in ("", "bash", "sh"):
                    commands += [c for c in join_lines(block) if _COMMAND.match(c)]
                block = None
            elif block is not None:
                block.append(line)
        found[doc] = commands
    return found


# Prints {"tools/x.py [sub]": --help text} as JSON: every tool run as __main__ with --help, in one process.
_HELP_SCRIPT = r"""
import contextlib, io, json, os, re, runpy, sys
def run(tool, args):
    sys.argv = [tool, *args, "--help"]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        try:
            runpy.run_path(tool, run_name="__main__")
        except SystemExit as exc:
            if exc.code not in (0, None):
                raise
    return out.getvalue()
texts = {}
for name in sorted(os.listdir("tools")):
    if name.endswith(".py"):
        tool = "tools/" + name
        texts[tool] = run(tool, [])
        first = texts[tool].split("\n", 1)[0]
        subs = re.search(r"\{([a-z,]+)\}", first)
        names = subs.group(1).split(",") if subs else []
        if " COMMAND " in first:
            names = re.findall(r"^    (\w+)  ", texts[tool], re.M)
        for sub in names:
            texts[tool + " " + sub] = run(tool, [sub])
print(json.dumps(texts))
"""


def tool_help_texts(python: str = sys.executable, env=None) -> Dict[str, str]:
    """{"tools/x.py [sub]": --help output} for every tool and every subcommand."""
    done = subprocess.run([python, "-c", _HELP_SCRIPT], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)
    if done.returncode != 0:
        raise RuntimeError(f"--help of the tools failed: {done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def help_examples(text: str) -> List[str]:
    """The commands of a --help text: lines starting with `python tools/` (with continuations),
    and run_net.py's concrete `run_net.py --cfg configs/...` example."""
    lines = text.splitlines()
    out = []
    for i, line in enumerate(lines):
        stripped = line.strip()
        if stripped.startswith("python tools/") or re.match(r"^run_net\.py --cfg configs/", stripped):
            block = [stripped]
            j = i
            while block[-1].endswith("\\") and j + 1 < len(lines):
                j += 1
                block.append(lines[j].strip())
            out.extend(join_lines(block))
    return out
