"""Atomic writes: the target appears whole or not at all, with ordinary permissions."""
import os
import stat

import pytest

from m3a.utils.file_io import atomic_path, atomic_write_text


def test_atomic_write_replaces_and_uses_umask(tmp_path):
    path = tmp_path / "out.txt"
    path.write_text("old")
    atomic_write_text(str(path), "new")
    assert path.read_text() == "new"
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o666 & ~umask
    assert os.listdir(tmp_path) == ["out.txt"]


def test_failure_keeps_the_old_file(tmp_path):
    path = tmp_path / "result.json"
    path.write_text("kept")
    with pytest.raises(RuntimeError):
        with atomic_path(str(path)) as tmp:
            open(tmp, "w").write("partial")
            raise RuntimeError("interrupted")
    assert path.read_text() == "kept" and os.listdir(tmp_path) == ["result.json"]
