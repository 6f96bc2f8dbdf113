"""Project-wide pytest fixtures.

``tiny_demo_dir`` / ``tiny_demo_summary``: a tiny demo data set (real H.264/AAC videos, lists,
class names, psi and lexicons; see m3a.prep.demo_data) built once per test session, for any
area's end-to-end tests. Its layout is that of ``make demo``'s data with MMIT_VERSION ``demo``.
"""
import pytest

from m3a.prep.demo_data import make_demo_dataset

# The tiny set: 24 videos (16 train, 4 val, 4 test) of 4 classes, 1.5 s at 30 fps, 86x64 pixels;
# one video has no audio stream. Builds in about 2 s.
TINY_DEMO = {"videos": 24, "classes": 4, "seed": 0, "duration": 1.5, "size": 64}


@pytest.fixture(scope="session")
def tiny_demo_summary(tmp_path_factory) -> dict:
    """Summary dict of the session's tiny demo data set (paths of lists, lexicons, names...)."""
    out_dir = tmp_path_factory.mktemp("tiny_demo")
    summary = make_demo_dataset(str(out_dir), workers=1, **TINY_DEMO)
    summary["config"] = dict(TINY_DEMO)
    return summary


@pytest.fixture(scope="session")
def tiny_demo_dir(tiny_demo_summary) -> str:
    """Folder of the session's tiny demo data set (use as DATA.PATH_TO_DATA_DIR, version demo)."""
    return tiny_demo_summary["out_dir"]
