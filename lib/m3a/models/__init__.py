"""Backbones, M3A relation heads and the model builder."""
