"""The folders the documented commands write into (outputs, downloads, data, visualisations) are
ignored by git, so following the docs leaves `git status` clean."""
import os

from tests.docs.commands import ROOT, doc_commands

# Folders of the repository itself that commands read from.
SOURCE_FOLDERS = {"configs", "tools", "lib", "tests", "data_lists", "lexicons"}


def written_top_folders():
    """Top-level folders of the relative paths in documented commands (values of options and
    KEY VALUE overrides), less the repository's own folders."""
    tops = set()
    for commands in doc_commands().values():
        for command in commands:
            for token in command.split():
                if "/" in token and not token.startswith(("/", "-", "'", '"', "tcp:", "http")):
                    tops.add(token.split("/")[0])
    return tops - SOURCE_FOLDERS


def test_documented_output_folders_are_ignored():
    with open(os.path.join(ROOT, ".gitignore")) as f:
        ignored = {line.strip() for line in f if line.strip() and not line.startswith("#")}
    tops = written_top_folders()
    assert {"output", "out", "demo_data", "vis", "checkpoints"} <= tops  # the parse finds them
    missing = sorted(t for t in tops if f"/{t}/" not in ignored)
    assert not missing, f"add to .gitignore: {', '.join('/' + t + '/' for t in missing)}"
