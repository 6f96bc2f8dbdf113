"""Import layering: lower layers never import higher or sideways ones."""
import ast
import os

import pytest

from m3a.utils.lexicon import LexiconError
from m3a.datasets.video_list import ListFormatError
from m3a.utils.parser import expected_errors

LIB = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib", "m3a")


def _imported_modules(package: str):
    """(file, module) for every import statement in the package's files."""
    folder = os.path.join(LIB, package)
    for name in sorted(os.listdir(folder)):
        if not name.endswith(".py"):
            continue
        with open(os.path.join(folder, name)) as f:
            tree = ast.parse(f.read())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                yield name, node.module
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    yield name, alias.name


@pytest.mark.parametrize("package, forbidden", [("datasets", "m3a.models"), ("utils", "m3a.datasets")])
def test_no_forbidden_imports(package, forbidden):
    offending = [f"{f}: {m}" for f, m in _imported_modules(package) if m == forbidden or m.startswith(forbidden + ".")]
    assert offending == []


def test_input_errors_of_the_data_side_are_expected_errors():
    assert issubclass(ListFormatError, expected_errors()) and issubclass(LexiconError, expected_errors())
