"""m3a: multi-modal multi-action video recognition with relation learners over actions."""

__version__ = "0.1.0"
