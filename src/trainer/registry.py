"""Registries: one per kind of thing the project has several of (source kinds, backends, export
formats). A new kind is one module and one registration; the config's discriminated unions and the
command line's choices are read from here, never from a second list.

Entries name their code as `"module:attribute"` (imported on first use, so reading a config never
imports torch) or hold it directly (a test's toy kind).

>>> toys = Registry("toy")
>>> toys.register("ball", 1)
1
>>> toys.names(), toys.get("ball")
(('ball',), 1)
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from trainer.errors import ConfigError

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])


def resolve(target: Any) -> Any:
    """`"package.module:attribute"` imported, or `target` itself when it is not such a string."""
    if isinstance(target, str) and ":" in target:
        module, _, attribute = target.partition(":")
        return getattr(importlib.import_module(module), attribute)
    return target


class Registry(Generic[T]):
    """Named entries of one kind, in registration order. `filled_by` names the module whose import
    registers the project's own entries: it is imported before the first lookup."""

    def __init__(self, what: str, filled_by: str | None = None):
        self.what = what
        self.filled_by = filled_by
        self._entries: dict[str, T] = {}
        self._listeners: list[Callable[[], None]] = []

    def _fill(self) -> None:
        if self.filled_by is not None:
            importlib.import_module(self.filled_by)  # at once when imported (or being imported) already

    def register(self, name: str, entry: T) -> T:
        if name in self._entries:
            raise ValueError(f"{self.what} {name!r} is registered twice")
        self._entries[name] = entry
        for listener in self._listeners:
            listener()
        return entry

    def unregister(self, name: str) -> None:
        """Remove an entry (a test's toy kind, once the test is done)."""
        del self._entries[name]
        for listener in self._listeners:
            listener()

    def on_change(self, listener: Callable[[], None]) -> None:
        """Call `listener` after each later registration (the config rebuilds its unions)."""
        self._listeners.append(listener)

    def get(self, name: str, where: str = "") -> T:
        self._fill()
        if name not in self._entries:
            raise ConfigError(f"{where}expected a {self.what} among {', '.join(self.names())}, found {name!r}")
        return self._entries[name]

    def names(self) -> tuple[str, ...]:
        self._fill()
        return tuple(self._entries)

    def entries(self) -> list[T]:
        self._fill()
        return list(self._entries.values())

    def __contains__(self, name: object) -> bool:
        self._fill()
        return name in self._entries


@dataclass(frozen=True)
class SourceKind:
    """A source kind: its config class (a `SourceConfig` with a `kind` Literal), its reader
    `(config, num_proc, progress) -> SourceResult`, the files it reads (for the fingerprint) and, for a
    kind that reads a folder of article files, where that folder is (None: its sentences come labeled)."""

    config: type
    reader: Any
    files: Any
    articles: Any = None

    def read(self, source: Any, num_proc: int = 1, progress: bool = True) -> Any:
        return resolve(self.reader)(source, num_proc=num_proc, progress=progress)

    def input_files(self, source: Any) -> list[Any]:
        return list(resolve(self.files)(source))

    def article_folder(self, source: Any) -> Any:
        """The folder of article files behind `source` (only for a kind with `articles`)."""
        return resolve(self.articles)(source)


@dataclass(frozen=True)
class BackendKind:
    """A backend: its config class (None for a folder that only predicts, such as an ONNX export), the
    class that trains, saves and loads it, the library whose format its folders are in (named on the
    model card, None for our own), and whether `trainer export` takes its folders."""

    config: type | None
    backend: Any
    library: str | None = None
    exportable: bool = False

    def cls(self) -> Any:
        return resolve(self.backend)

    def create(self, model: Any, training: Any) -> Any:
        """A fresh, untrained backend for a `model` config and the `training` settings."""
        return self.cls().from_config(model, training)


@dataclass(frozen=True)
class ExportFormat:
    """`trainer export --format NAME`: `export(source_backend, model_dir, meta, folder)` writes the new
    model folder's files into `folder` from the loaded source model, its folder and its meta."""

    export: Any
    help: str

    def run(self, *args: Any, **kwargs: Any) -> Any:
        return resolve(self.export)(*args, **kwargs)


SOURCES: Registry[SourceKind] = Registry("source kind", filled_by="trainer.config")
BACKENDS: Registry[BackendKind] = Registry("backend", filled_by="trainer.config")
EXPORTS: Registry[ExportFormat] = Registry("export format", filled_by="trainer.models.export")


def register_source(reader: Any, files: Any, articles: Any = None) -> Callable[[type], type]:
    """Class decorator for a source config: `@register_source("pkg.mod:read_x", "pkg.mod:x_files")`, and
    `"pkg.mod:x_articles"` third for a kind that reads a folder of article files (`tag` and `select` read it)."""

    def decorate(config: type) -> type:
        kind = config.model_fields["kind"].default
        SOURCES.register(kind, SourceKind(config, reader, files, articles))
        return config

    return decorate


def register_backend(backend: Any, library: str | None = None, exportable: bool = False) -> Callable[[type], type]:
    """Class decorator for a model config: `@register_backend("pkg.mod:XBackend")`; `library` names the
    format of its folders on the model card, `exportable` lets `trainer export` take them."""

    def decorate(config: type) -> type:
        BACKENDS.register(config.model_fields["backend"].default, BackendKind(config, backend, library, exportable))
        return config

    return decorate


def register_export(name: str, help: str) -> Callable[[F], F]:
    """Function decorator for an export format: `@register_export("onnx", "what it writes")` on
    `export(source_backend, model_dir, meta, folder)`."""

    def decorate(export: F) -> F:
        EXPORTS.register(name, ExportFormat(export, help))
        return export

    return decorate
