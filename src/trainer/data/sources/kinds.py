"""Any source kind, through the registry: read it, list the files it reads, find its article folder."""

from __future__ import annotations

from pathlib import Path

from trainer.config import SourceConfig
from trainer.data.rules import rules_path
from trainer.data.sources.types import SourceResult
from trainer.errors import ConfigError
from trainer.registry import SOURCES


def read_source(source: SourceConfig, num_proc: int = 1, progress: bool = True) -> SourceResult:
    """Read a source with its kind's registered reader."""
    return SOURCES.get(source.kind).read(source, num_proc=num_proc, progress=progress)


def input_files(source: SourceConfig) -> list[Path]:
    """Every local file a source reads, for the dataset fingerprint."""
    files: list[Path] = [rules_path(source.rules)]
    if source.exclude_articles is not None:
        files.append(source.exclude_articles)
    return files + SOURCES.get(source.kind).input_files(source)


def article_folder(source: SourceConfig) -> Path:
    """The folder of article files behind a data config's source, as its kind's registration finds it."""
    kind = SOURCES.get(source.kind)
    if kind.articles is None:
        with_articles = [name for name in SOURCES.names() if SOURCES.get(name).articles is not None]
        raise ConfigError(f"expected sources of articles ({', '.join(with_articles)}), found a {source.kind!r} "
                          "source, whose sentences are labeled already")
    return kind.article_folder(source)
