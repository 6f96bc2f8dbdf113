"""The error every configuration check raises (defined apart so that models can raise it too)."""


class ConfigError(ValueError):
    """An expected configuration mistake: a missing file, an unknown key, a bad value."""
