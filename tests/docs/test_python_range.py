"""The Python range the docs state is the one setup.py declares, and this interpreter is in it."""
import os
import re
import sys

from tests.docs.commands import ROOT


def _read(name):
    with open(os.path.join(ROOT, name), encoding="utf-8") as f:
        return f.read()


def test_python_range_is_stated_consistently():
    low = re.search(r'python_requires=">=3\.(\d+)"', _read("setup.py"))
    assert low, "setup.py must declare python_requires >=3.N"
    minor = int(low.group(1))
    assert minor == 10  # torch 2.13.0 has wheels for CPython 3.10 to 3.14, none for 3.9
    assert "torch==2.13.0" in _read("Makefile")
    readme = _read("README.md")
    assert f"Python 3.{minor} to 3.14" in readme and "3.9+" not in readme
    assert (3, minor) <= sys.version_info[:2] <= (3, 14)
