"""Configuration: defaults, loading from YAML and command-line overrides, validation."""
from m3a.config.defaults import get_cfg
from m3a.config.errors import ConfigError
from m3a.config.loading import load_config

__all__ = ["ConfigError", "get_cfg", "load_config"]
