"""Session fixture: the tiny trained models of tests/visualization/tiny_setup.py."""
import pytest

from tests.visualization.tiny_setup import tiny_run


@pytest.fixture(scope="session")
def tiny(tmp_path_factory, tiny_demo_dir) -> dict:
    """Configs, checkpoints and test videos of the tiny variants (built once per session)."""
    return tiny_run(str(tmp_path_factory.getbasetemp() / "tiny_zoo"), tiny_demo_dir)
