"""User-facing errors: one line that says what was expected, what was found and how to fix it.

The command line prints these without a traceback and exits with `EXIT_USAGE`; everything else
is a bug and keeps its traceback.
"""

from __future__ import annotations

EXIT_USAGE = 2


class TrainerError(Exception):
    """A mistake in the user's input (config, data, paths). Its message is shown as is."""


class ConfigError(TrainerError):
    """A config file or override that does not validate."""


class DataError(TrainerError):
    """Input data that cannot be read or does not fit the label scheme."""


class ModelLoadError(TrainerError):
    """A model folder or URI that cannot be loaded."""
