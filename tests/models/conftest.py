"""Fixtures of the model tests (defined in helpers.py, shared with tests/utils/test_checkpoint.py)."""
from tests.models.helpers import single_thread, tiny_data_dir  # noqa: F401
