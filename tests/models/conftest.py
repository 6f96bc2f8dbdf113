"""Fixtures of the model tests."""
import pytest

from tests.models.helpers import TINY_AUDIO, TINY_CLASSES, TINY_TEXT, write_lexicons


@pytest.fixture(scope="session")
def tiny_data_dir(tmp_path_factory):
    """A data folder with tiny lexicons (5 classes, audio width 4, text width 6) and its arrays."""
    root = tmp_path_factory.mktemp("tiny_data")
    arrays = write_lexicons(root, TINY_CLASSES, TINY_AUDIO, TINY_TEXT)
    return str(root), arrays


@pytest.fixture(autouse=True, scope="module")
def single_thread():
    """Tiny models run fastest on one intra-op thread; restore the setting afterwards."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
