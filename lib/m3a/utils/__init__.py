"""Utilities: metrics, checkpoints, safe file I/O, logging, distributed helpers."""
