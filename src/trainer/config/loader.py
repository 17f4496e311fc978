"""Reading configs: the one place that reads YAML, and the one-line errors of a config that does not validate.

Precedence: defaults in `trainer.config.schema` < the YAML files < `--set key.path=value` overrides.
Relative paths in a config file are taken from the file's project: the nearest folder above the file
that holds a pyproject.toml (else the file's own folder), so commands work from any folder.
Unknown keys, wrong types and missing files are `ConfigError`s with a one-line message.
"""

from __future__ import annotations

import difflib
import json
import os
from pathlib import Path
from typing import Any, get_args

import yaml
from pydantic import BaseModel, ValidationError

from trainer.config.schema import (
    BACKEND_TAG,
    ROOT,
    SOURCE_TAG,
    DataConfig,
    ExperimentConfig,
)
from trainer.config.sweep_space import SWEEP_PARAM_TYPES
from trainer.errors import ConfigError
from trainer.registry import BACKENDS, SOURCES

# Bounds on any YAML the project reads (configs, overrides, rules, search spaces): far above any real
# file, far below what an alias bomb ("billion laughs") or a runaway file needs.
MAX_YAML_BYTES = 2_000_000
MAX_YAML_NODES = 200_000  # values after expanding aliases
MAX_YAML_DEPTH = 100


def _expanded_size(node: yaml.Node, sizes: dict[int, int], depth: int, open_nodes: set[int]) -> int:
    """How many values `node` stands for once every alias is expanded, without expanding any."""
    if id(node) in sizes:
        return sizes[id(node)]
    if depth > MAX_YAML_DEPTH:
        raise ValueError(f"expected values nested at most {MAX_YAML_DEPTH} deep, found deeper nesting")
    if id(node) in open_nodes:
        raise ValueError("expected aliases to earlier values, found an alias inside its own anchor")
    open_nodes.add(id(node))
    children: list[yaml.Node] = []
    if isinstance(node, yaml.SequenceNode):
        children = node.value
    elif isinstance(node, yaml.MappingNode):
        children = [part for pair in node.value for part in pair]
        seen: set[str] = set()
        for key, _ in node.value:  # PyYAML keeps the last of two equal keys without a word
            if isinstance(key, yaml.ScalarNode) and key.value != "<<":
                if key.value in seen:
                    raise ValueError(f"line {key.start_mark.line + 1}: expected each key once in a mapping, found "
                                     f"{key.value!r} again; keep one")
                seen.add(key.value)
    total = 1
    for child in children:
        total += _expanded_size(child, sizes, depth + 1, open_nodes)
        if total > MAX_YAML_NODES:
            raise ValueError(
                f"expected at most {MAX_YAML_NODES:,} values once aliases are expanded, found more "
                "(an alias bomb?); write the values out"
            )
    open_nodes.discard(id(node))
    sizes[id(node)] = total
    return total


def parse_yaml(text: str) -> Any:
    """`yaml.safe_load` with bounds on size, nesting and alias expansion; a ValueError or
    yaml.YAMLError says what is wrong. Every YAML the project reads goes through here.

    >>> parse_yaml("a: [1, 2]")
    {'a': [1, 2]}
    """
    if len(text) > MAX_YAML_BYTES:
        raise ValueError(f"expected at most {MAX_YAML_BYTES:,} characters of YAML, found {len(text):,}")
    loader = yaml.SafeLoader(text)
    try:
        try:
            node = loader.get_single_node()
        except RecursionError:
            raise ValueError(f"expected values nested at most {MAX_YAML_DEPTH} deep, found deeper nesting") from None
        if node is None:
            return None
        _expanded_size(node, {}, 0, set())
        return loader.construct_document(node)
    finally:
        loader.dispose()


def _yaml_problem(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    where = f"line {mark.line + 1}: " if mark else ""
    return f"{where}not valid YAML ({getattr(exc, 'problem', None) or exc})"


def read_yaml(path: Path) -> dict[str, Any]:
    """Read a YAML mapping, with a ConfigError for a missing, unreadable, oversized or non-mapping file."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found; expected a YAML file (check the path)")
    if path.stat().st_size > MAX_YAML_BYTES:
        raise ConfigError(f"{path}: expected a config of at most {MAX_YAML_BYTES:,} bytes, found "
                          f"{path.stat().st_size:,}; is it the file you meant?")
    try:
        loaded = parse_yaml(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: expected UTF-8 text, found undecodable bytes at {exc.start}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: {_yaml_problem(exc)}") from None
    except ValueError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    if loaded is None:
        loaded = {}
    if not isinstance(loaded, dict):
        raise ConfigError(f"{path}: expected a mapping of keys at the top level, found {type(loaded).__name__}")
    return loaded


def parse_overrides(pairs: list[str]) -> dict[str, Any]:
    """Turn `["training.epochs=2", ...]` into a dict of dotted keys to YAML-parsed values.

    >>> parse_overrides(["training.epochs=2", "tracking.uri=null"])
    {'training.epochs': 2, 'tracking.uri': None}
    """
    parsed: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        key = key.strip()
        if not sep or not key or any(not part for part in key.split(".")):
            raise ConfigError(f"--set {pair!r}: expected KEY.PATH=VALUE, e.g. --set training.epochs=2")
        try:
            parsed[key] = parse_yaml(raw) if raw.strip() else ""
        except yaml.YAMLError as exc:
            raise ConfigError(
                f"--set {key}: expected a YAML value, found {raw!r}: {_yaml_problem(exc)}; "
                "quote a string that holds YAML syntax, e.g. --set 'name=\"[draft]\"'"
            ) from None
        except ValueError as exc:
            raise ConfigError(f"--set {key}: {exc}") from None
    return parsed


def _apply(tree: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, leaf = dotted.split(".")
    node = tree
    for part in parents:
        child = node.get(part)
        if not isinstance(child, dict):
            child = {}
            node[part] = child
        node = child
    node[leaf] = value


def _fields_at(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """Valid keys of the (sub)model that `loc` (pydantic's error path, union tags included) points
    into, for 'did you mean' hints."""
    current: Any = model
    annotation: Any = None
    for part in loc:
        if isinstance(part, int) or not (isinstance(current, type) and issubclass(current, BaseModel)):
            continue
        field = current.model_fields.get(part)
        if field is None:
            # a discriminated union's tag (e.g. 'sklearn'): the member with that tag
            tagged = _tagged_member(annotation, part)
            if tagged is not None:
                current = tagged
            continue
        annotation = field.annotation
        current = _first_model(annotation)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return list(current.model_fields)
    return []


def _tagged_member(annotation: Any, tag: str) -> Any:
    for arg in get_args(annotation):
        if isinstance(arg, type) and issubclass(arg, BaseModel):
            for name in (SOURCE_TAG, BACKEND_TAG):
                field = arg.model_fields.get(name)
                if field is not None and field.default == tag:
                    return arg
        else:
            found = _tagged_member(arg, tag)
            if found is not None:
                return found
    return None


def _first_model(annotation: Any) -> Any:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        found = _first_model(arg)
        if found is not None:
            return found
    return None


def _describe(error: dict[str, Any], model: type[BaseModel]) -> tuple[str, str]:
    """(dotted key, message) for one pydantic error."""
    # union members' tags in pydantic's error paths (sources, backends, a sweep's parameter types)
    tags = set(SOURCES.names()) | set(BACKENDS.names()) | set(SWEEP_PARAM_TYPES)
    loc = tuple(part for part in error["loc"] if not (isinstance(part, str) and part in tags))
    key = ".".join(str(p) if not isinstance(p, int) else f"[{p}]" for p in loc).replace(".[", "[")
    kind = error["type"]
    found = error.get("input")
    if kind == "extra_forbidden":
        valid = _fields_at(model, tuple(error["loc"][:-1]))
        close = difflib.get_close_matches(str(loc[-1]), valid, n=1)
        hint = f"did you mean '{close[0]}'?" if close else f"valid keys here: {', '.join(valid)}"
        return key, f"unknown key ({hint})"
    if kind == "missing":
        return key, "required key is missing; add it to the file"
    if kind == "union_tag_invalid":
        return key, f"expected one of {error['ctx']['expected_tags']}, found {error['ctx']['tag']!r}"
    message = error["msg"].removeprefix("Value error, ").removeprefix("Input should be ")
    if message.startswith(("an existing path", "the project's label scheme")):
        return key, f"expected {message}"
    if message.startswith("expected "):
        return key, message
    shown = json.dumps(found, default=str) if not isinstance(found, dict) else "a mapping"
    return key, f"expected {message[0].lower() + message[1:]}, found {shown}"


def validate_config(model: type[BaseModel], raw: dict[str, Any], origin: str, overridden: set[str],
                    root: Path | None = None, prefix: str = "") -> Any:
    """`raw` validated as `model`, its relative paths taken from `root`; a one-line ConfigError naming
    the first problem (under `origin`, or `--set KEY` for an overridden key) and how many more there are."""
    try:
        return model.model_validate(raw, context={ROOT: root} if root is not None else None)
    except ValidationError as exc:
        errors = exc.errors()
        key, message = _describe(errors[0], model)
        key = f"{prefix}{key}"
        where = f"--set {key}" if key in overridden else f"{origin}: {key}"
        more = f" (and {len(errors) - 1} more problem{'s' * (len(errors) > 2)})" if len(errors) > 1 else ""
        raise ConfigError(f"{where}: {message}{more}") from None


def output_problem(folder: Path) -> str | None:
    """Why outputs could not be written under `folder`, or None: a file in the way, a read-only parent.

    >>> output_problem(Path("README.md/x"))  # doctest: +SKIP
    "expected a folder for outputs, found 'README.md', which is a file"
    """
    for existing in (folder, *folder.parents):
        if not existing.exists():
            continue
        if not existing.is_dir():
            return f"expected a folder for outputs, found '{existing}', which is a file (choose another path)"
        if not os.access(existing, os.W_OK | os.X_OK):
            return f"expected a writable folder for outputs, found '{existing}' read-only (choose another path)"
        return None
    return None


def _check_output(config: DataConfig | ExperimentConfig, origin: str, overridden: set[str], prefix: str = "") -> None:
    """Output folders are checked when the config loads, so a bad one fails before any work."""
    data = isinstance(config, DataConfig)
    name_key, target = ("name", config.dataset_dir) if data else ("run_name", config.model_dir)
    for key, folder in (("output_dir", config.output_dir), (name_key, target)):
        problem = output_problem(folder)
        if problem is not None:
            dotted = f"{prefix}{key}"
            where = f"--set {dotted}" if dotted in overridden else f"{origin}: {dotted}"
            raise ConfigError(f"{where}: {problem}")


def project_root(config_file: Path) -> Path:
    """The folder a config file's relative paths start from: the nearest one above it with a
    pyproject.toml, else the file's own folder.

    >>> project_root(Path("configs/default.yaml")).joinpath("pyproject.toml").is_file()  # doctest: +SKIP
    True
    """
    folder = config_file.resolve().parent
    for candidate in (folder, *folder.parents):
        if (candidate / "pyproject.toml").is_file():
            return candidate
    return folder


def load_data_config(path: str | Path, overrides: list[str] | None = None) -> DataConfig:
    """Load and validate a data config.

    >>> load_data_config("configs/data/bundled.yaml").name  # doctest: +SKIP
    'bundled'
    """
    path = Path(path)
    raw = read_yaml(path)
    parsed = parse_overrides(overrides or [])
    for dotted, value in parsed.items():
        _apply(raw, dotted, value)
    config = validate_config(DataConfig, raw, str(path), set(parsed), project_root(path))
    _check_output(config, str(path), set(parsed))
    return config


def load_config(path: str | Path, overrides: list[str] | None = None) -> ExperimentConfig:
    """Load an experiment config, inline the data config it names, apply overrides, validate.

    >>> cfg = load_config("configs/default.yaml", ["training.epochs=1"])  # doctest: +SKIP
    """
    path = Path(path)
    raw = read_yaml(path)
    parsed = parse_overrides(overrides or [])
    if "data" in parsed:  # --set data=configs/data/other.yaml names another data config file
        raw["data"] = parsed["data"]
    data = raw.get("data")
    root = project_root(path)
    if isinstance(data, str):
        data_path = Path(os.path.normpath(root / Path(data).expanduser()))
        if not data_path.is_file():
            raise ConfigError(
                f"{path}: data: expected a data config file, found '{data}' which does not exist "
                f"(relative paths are taken from the project root, {root})"
            )
        origin = f"{path} (data from {data_path})"
        # the data config's paths are taken from its own file's project, as `build-data` takes them
        data_raw = read_yaml(data_path)
        for dotted, value in parsed.items():
            if dotted.startswith("data."):
                _apply(data_raw, dotted.removeprefix("data."), value)
        data_config = validate_config(DataConfig, data_raw, origin, set(parsed), project_root(data_path),
                                      prefix="data.")
        raw["data"] = data_config.model_dump(mode="json")  # its paths absolute now: the same from any root
    else:
        origin, data_config = str(path), None
    for dotted, value in parsed.items():
        if dotted != "data" and not (dotted.startswith("data.") and data_config is not None):
            _apply(raw, dotted, value)
    config = validate_config(ExperimentConfig, raw, origin, set(parsed), root)
    if data_config is not None:
        config.data.project = data_config.project  # fingerprinted as build-data fingerprints it
    _check_output(config, origin, set(parsed))
    _check_output(config.data, origin, set(parsed), "data.")
    return config


def to_plain(config: BaseModel) -> dict[str, Any]:
    """The config as JSON-able plain data (paths as strings), e.g. for saving beside a model."""
    return config.model_dump(mode="json")


def dump_yaml(config: BaseModel) -> str:
    """The fully resolved config as YAML, defaults included."""
    return yaml.safe_dump(to_plain(config), sort_keys=False)


def portable(config: BaseModel, root: Path) -> dict[str, Any]:
    """The config as plain data with its paths relative to `root` where they can be, as they were
    written: what fingerprints and cards hash and show, the same wherever the project lies."""

    def walk(model: BaseModel, plain: dict[str, Any]) -> dict[str, Any]:
        for name in type(model).model_fields:
            value = getattr(model, name)
            if isinstance(value, Path) and value.is_absolute():
                plain[name] = os.path.relpath(value, root)
            elif isinstance(value, BaseModel):
                walk(value, plain[name])
            elif isinstance(value, list):
                for item, item_plain in zip(value, plain[name]):
                    if isinstance(item, BaseModel):
                        walk(item, item_plain)
        return plain

    return walk(config, config.model_dump(mode="json"))
