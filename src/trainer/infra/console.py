"""What a command-line run shows on the terminal: the project's log lines and Python warnings on
stderr, without colour codes, and none of the libraries' own progress bars and notices."""

from __future__ import annotations

import logging
import os
import re
import warnings


def quiet_libraries(quiet: bool) -> None:
    """Library output that asks nothing of the user; the project prints its own lines and progress.

    Each is a setting of the library's own (the environment wins where a user sets it). With -q, the
    libraries' own warnings go too (transformers' load report); the project's warnings stay.
    """
    # transformers' "Loading weights", "Writing model shards"
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    # "Downloading artifacts" per logged model
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    # datasets' "Saving the dataset (1/1 shards)"
    os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
    # "Creating initial MLflow database tables..." and the like
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error" if quiet else "warning")
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
    # MLflow warns of its own pydantic models' `Any` hints (wrapped in colour codes) whenever it infers a
    # signature; nothing a user can change. Matched with or without the codes.
    warnings.filterwarnings("ignore", message=r"(\x1b\[[0-9;]*m)?Any type hint is inferred as AnyType")
    from trainer.infra import progress

    progress.configure(enabled=not quiet)


class PlainFormatter(logging.Formatter):
    """Log lines without terminal colour codes (MLflow colours some of its warnings), and without the
    passwords of URIs (a tracking server's, a study storage's)."""

    _ANSI = re.compile(r"\x1b\[[0-9;]*m")

    def format(self, record: logging.LogRecord) -> str:
        from trainer.infra.secrets import mask_secrets

        return mask_secrets(self._ANSI.sub("", super().format(record)))


def setup_logging(quiet: bool, main_rank: bool) -> None:
    """One handler on stderr for the project's lines and Python warnings alike."""
    handler = logging.StreamHandler()
    handler.setFormatter(PlainFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S"))
    logging.basicConfig(level=logging.WARNING if quiet or not main_rank else logging.INFO, handlers=[handler])
    logging.captureWarnings(True)  # warnings.warn(...) from libraries become plain log lines
