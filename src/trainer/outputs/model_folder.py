"""The model folder's layout: every file name in it, and the readers and writers of the files that
`train` writes beside the weights. `train`, `evaluate`, `predict`, `tracking` and the card take the
layout from this module, never from each other (`train` does call `evaluate`'s scoring and `predict`'s
Classifier, and `evaluate` `predict`'s model loading, for what they do, not for file names).

    models/<run>/
      trainer_model.json         backend, label order, backend settings (write_meta / read_meta)
      model.safetensors, ...     the backend's own files
      training_config.json/.yaml the resolved config (read_training_config)
      run.json                   MLflow run id, tracking URI, dataset fingerprint and summary (read_run)

Nothing in the folder names an absolute path: the config's paths and a SQLite tracking store are written
relative to the folder's project (`project_of`) and read back against the project it lies in now, so a
folder copied into another clone uses that clone's data and store, never the original's.
      metrics.json               validation and test figures (read_metrics)
      temperature.json           the fitted temperature (and per-label offsets), when fitted (load_calibration)
      provenance.json, pip-freeze.txt
      README.md                  the model card
      manifest.json              size and SHA-256 of every other file written at save (write_manifest),
                                 checked by every load (verify_manifest)
      test_report/               the test split's report
      evaluations/<data>/        each `trainer evaluate` saved in the folder

>>> evaluation_dir(Path("models/minilm-bundled"), "bundled:test").as_posix()
'models/minilm-bundled/evaluations/bundled-test'
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trainer.config import DEFAULT_MAX_LENGTH, MAX_LENGTH_RANGE
from trainer.errors import ModelLoadError
from trainer.infra.secrets import mask_values
from trainer.labels import LABELS

log = logging.getLogger(__name__)

MODEL_META = "trainer_model.json"
WEIGHTS_FILE = "model.safetensors"  # a transformer's weights, as save_pretrained names them
RESOLVED_CONFIG = "training_config.json"
RESOLVED_CONFIG_YAML = "training_config.yaml"
RUN_FILE = "run.json"
METRICS_FILE = "metrics.json"
TEMPERATURE_FILE = "temperature.json"
PROVENANCE_FILE = "provenance.json"
FREEZE_FILE = "pip-freeze.txt"
CARD_FILE = "README.md"
TEST_REPORT_DIR = "test_report"
EVAL_DIR = "evaluations"
REPORT_JSON = "report.json"
MANIFEST_FILE = "manifest.json"


def _read_json(path: Path) -> Any:
    """A JSON object file of the folder, None when absent; a ModelLoadError when it is not one."""
    if not path.is_file():
        return None
    try:
        loaded = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelLoadError(
            f"{path}: expected JSON, found a file that is not ({exc}); the model folder is damaged: copy it "
            "again or train it again"
        ) from None
    if not isinstance(loaded, dict):  # every JSON file of a model folder holds one object
        raise ModelLoadError(f"{path}: expected a JSON object, found {type(loaded).__name__}; the model folder is "
                             "damaged: copy it again or train it again")
    return loaded


def _write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=2), encoding="utf-8")


# ---------------------------------------------------------------- metadata


def write_meta(directory: Path, backend: str, **extra: Any) -> None:
    """Write the metadata that makes a model folder self-describing: backend and label order."""
    _write_json(directory / MODEL_META, {"backend": backend, "labels": list(LABELS), **extra})


def read_meta(directory: Path) -> dict[str, Any]:
    """Read a model folder's metadata, with a ModelLoadError when it is not a model folder."""
    path = directory / MODEL_META
    if not directory.is_dir():
        found = "a file" if directory.is_file() else "nothing there"
        raise ModelLoadError(f"{directory}: expected a model folder, found {found} (check the path)")
    if not path.is_file():
        raise ModelLoadError(
            f"{directory}: expected a model folder with {MODEL_META}, found none "
            "(pass a folder written by `trainer train`, e.g. models/<run-name>)"
        )
    meta = _read_json(path)
    if tuple(meta.get("labels", ())) != LABELS:
        raise ModelLoadError(
            f"{path}: expected labels {list(LABELS)}, found {meta.get('labels')}; this model uses another scheme"
        )
    return meta


def max_length(meta: dict[str, Any], directory: Path | None = None) -> int:
    """The number of tokens a transformer folder reads, from its metadata (read from `directory`)."""
    value = meta.get("max_length", DEFAULT_MAX_LENGTH)  # a folder whose metadata predates the entry
    low, high = MAX_LENGTH_RANGE
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ModelLoadError(f"{(directory or Path()) / MODEL_META}: expected max_length to be a whole number of "
                             f"tokens from {low} to {high}, found {value!r}; the model folder is damaged")
    return value


# The metadata key of a transformer folder that reads each sentence with its neighbours (model.context); a
# folder without it reads bare sentences, as every folder did before the option.
CONTEXT_KEY = "context"


def context_meta(context: bool) -> dict[str, bool]:
    """The metadata entry of `context`: written only when on, so a plain model's metadata stays as it was."""
    return {CONTEXT_KEY: True} if context else {}


def reads_context(meta: dict[str, Any], directory: Path | None = None) -> bool:
    """Whether a transformer folder reads context, from its metadata (read from `directory`)."""
    value = meta.get(CONTEXT_KEY, False)
    if not isinstance(value, bool):
        raise ModelLoadError(f"{(directory or Path()) / MODEL_META}: expected {CONTEXT_KEY} to be true or false, "
                             f"found {value!r}; the model folder is damaged")
    return value


# ---------------------------------------------------------------- manifest


# Not hashed: the card (a person may edit it) and the reports `evaluate` adds later.
_UNHASHED_FILES = frozenset({MANIFEST_FILE, CARD_FILE})
_UNHASHED_DIRS = frozenset({TEST_REPORT_DIR, EVAL_DIR})


def _hashed_files(directory: Path) -> list[Path]:
    return sorted(
        path for path in directory.rglob("*")
        if path.is_file() and not any(part.startswith(".") for part in path.relative_to(directory).parts)
        and path.relative_to(directory).parts[0] not in _UNHASHED_DIRS
        and path.relative_to(directory).as_posix() not in _UNHASHED_FILES
    )


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_manifest(directory: Path) -> None:
    """Record the size and SHA-256 of every file the folder holds now (the last step of a save)."""
    files = {p.relative_to(directory).as_posix(): {"bytes": p.stat().st_size, "sha256": _sha256(p)}
             for p in _hashed_files(directory)}
    _write_json(directory / MANIFEST_FILE, {"algorithm": "sha256", "files": files})


def verify_manifest(directory: Path) -> None:
    """Refuse a folder whose files are missing, truncated or changed since it was saved, naming the file.

    A folder saved before manifests existed loads with a warning, unchecked but for links out of it.
    """
    record = _read_json(directory / MANIFEST_FILE)
    if record is None:
        if (directory / MODEL_META).is_file():
            check_no_links_out(directory)  # a manifest would refuse them too: a load reads the folder's own files
            log.warning("%s: no %s (saved by an older trainer); its files cannot be checked for damage",
                        directory, MANIFEST_FILE)
        return
    files = record.get("files") if isinstance(record, dict) else None
    if not isinstance(files, dict) or not all(
        isinstance(v, dict) and isinstance(v.get("bytes"), int) and isinstance(v.get("sha256"), str)
        for v in files.values()
    ):
        raise ModelLoadError(f"{directory / MANIFEST_FILE}: expected a files mapping of bytes and sha256, found "
                             "something else; the model folder is damaged: copy it again or train it again")
    for name, expected in files.items():
        path = directory / name
        if not path.resolve().is_relative_to(directory.resolve()):
            raise ModelLoadError(f"{directory / MANIFEST_FILE}: expected files inside the folder, found {name!r}")
        fix = "copy the folder again or train it again"
        if not path.is_file():
            raise ModelLoadError(f"{path}: expected this file of the model (listed in {MANIFEST_FILE}), found it "
                                 f"missing; {fix}")
        size = path.stat().st_size
        if size < expected["bytes"]:
            raise ModelLoadError(f"{path}: expected {expected['bytes']:,} bytes, found {size:,} (truncated, or "
                                 f"changed since it was saved); {fix}")
        if size != expected["bytes"] or _sha256(path) != expected["sha256"]:
            raise ModelLoadError(f"{path}: expected the file saved with the model, found it changed since (its "
                                 f"SHA-256 differs from {MANIFEST_FILE}); {fix}")


# ---------------------------------------------------------------- what train writes


def write_training_files(
    directory: Path, plain_config: dict[str, Any], metrics: dict[str, Any], run: dict[str, Any], project: Path
) -> None:
    """The resolved config (JSON and YAML), the metrics and the run record, beside the weights.

    `plain_config` has its paths relative to `project` already (config.portable); the tracking URIs of
    the config and the run become relative to it here."""
    import yaml

    plain = dict(plain_config)
    if isinstance(plain.get("tracking"), dict) and plain["tracking"].get("uri"):
        plain["tracking"] = {**plain["tracking"], "uri": portable_uri(plain["tracking"]["uri"], project)}
    model = plain.get("model")
    if isinstance(model, dict) and isinstance(model.get("pretrained"), str) and os.path.isabs(model["pretrained"]):
        plain["model"] = {**model, "pretrained": os.path.relpath(model["pretrained"], project)}
    plain = mask_values(plain)  # a password in tracking.uri stays out of the folder (it is copied, shared)
    _write_json(directory / RESOLVED_CONFIG, plain)
    (directory / RESOLVED_CONFIG_YAML).write_text(yaml.safe_dump(plain, sort_keys=False), encoding="utf-8")
    _write_json(directory / METRICS_FILE, metrics)
    if run.get("tracking_uri"):
        run = {**run, "tracking_uri": portable_uri(run["tracking_uri"], project)}
    _write_json(directory / RUN_FILE, {**run, "labels": list(LABELS)})


def read_run(directory: Path) -> dict[str, Any]:
    """run.json: MLflow run id, tracking URI, dataset fingerprint and summary ({} when absent)."""
    return _read_json(directory / RUN_FILE) or {}


# ---------------------------------------------------------------- the project a folder is used in

_SQLITE = "sqlite:///"


def project_of(directory: Path) -> Path:
    """The project a model folder lies in: the nearest folder above it with a pyproject.toml, else the
    folder that holds its models folder (`<root>/models/<run>` -> `<root>`).

    >>> project_of(Path("/nowhere/models/run")).as_posix()
    '/nowhere'
    """
    folder = Path(os.path.abspath(directory))
    for candidate in folder.parents:
        if (candidate / "pyproject.toml").is_file():
            return candidate
    return folder.parent.parent


def shown_path(path: Path | str, project: Path) -> str:
    """A path as a model folder records it: relative to the project (with `..` if need be).

    >>> shown_path(Path("/p/models/run"), Path("/p"))
    'models/run'
    """
    return os.path.relpath(os.path.abspath(path), project)


def portable_uri(uri: str, project: Path) -> str:
    """A tracking URI as a model folder records it: a SQLite file relative to the project, others as they are.

    >>> portable_uri("sqlite:////p/mlflow.db", Path("/p"))
    'sqlite:///mlflow.db'
    >>> portable_uri("http://127.0.0.1:5000", Path("/p"))
    'http://127.0.0.1:5000'
    """
    if not uri.startswith(_SQLITE):
        return uri
    path = uri.removeprefix(_SQLITE)
    return _SQLITE + (os.path.relpath(path, project) if os.path.isabs(path) else path)


def anchored_uri(uri: str, project: Path) -> str | None:
    """A tracking URI read from a model folder, for the project the folder is used in: a relative SQLite
    file is taken from that project. An absolute SQLite file outside it (a folder saved by an older trainer
    in another checkout) gives None: the caller uses the current store rather than write into another project.

    >>> anchored_uri("sqlite:///mlflow.db", Path("/q"))
    'sqlite:////q/mlflow.db'
    >>> anchored_uri("sqlite:////p/mlflow.db", Path("/q")) is None
    True
    >>> anchored_uri("sqlite:///../p/mlflow.db", Path("/q")) is None
    True
    """
    if not uri.startswith(_SQLITE):
        return uri
    path = Path(uri.removeprefix(_SQLITE))
    # a store is only ever a file of the project the folder lies in: a run.json from elsewhere must not send
    # the evaluation, predictions included, to a store it chose
    resolved = Path(os.path.normpath(path if path.is_absolute() else project / path))
    return _SQLITE + str(resolved) if resolved.is_relative_to(project) else None


def training_store(directory: Path) -> str | None:
    """The tracking URI of the folder's training run, for the project the folder lies in now (None: none
    recorded, or one in another checkout)."""
    uri = read_run(directory).get("tracking_uri")
    return anchored_uri(uri, project_of(directory)) if isinstance(uri, str) and uri else None


def read_metrics(directory: Path) -> dict[str, Any] | None:
    return _read_json(directory / METRICS_FILE)


def read_training_config(directory: Path) -> Any:
    """The resolved ExperimentConfig the model was trained with, or None (exports, old folders); its
    relative paths are taken from the project the folder lies in now."""
    from trainer.config import ROOT, ExperimentConfig

    from pydantic import ValidationError

    plain = _read_json(directory / RESOLVED_CONFIG)
    project = project_of(directory)  # relative paths name files of the project the folder is used in
    try:
        return None if plain is None else ExperimentConfig.model_validate(plain, context={ROOT: project})
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"]) or "the top level"
        raise ModelLoadError(
            f"{directory / RESOLVED_CONFIG}: expected the config the model was trained with, found one that does not "
            f"validate ({where}: {error['msg']}); the model folder is damaged or from another version of trainer"
        ) from None


def read_json(path: Path) -> Any:
    """Any JSON file of a model folder (a report, provenance), or None when it is not there."""
    return _read_json(path)


# ---------------------------------------------------------------- temperature


def save_temperature(directory: Path, temperature: float, fitted_on: str, bias: dict[str, float] | None = None) -> None:
    record: dict[str, Any] = {"temperature": temperature, "fitted_on": fitted_on}
    if bias is not None:
        record["bias"] = bias  # per-label offsets of bias-corrected temperature scaling (training.class_bias)
    _write_json(directory / TEMPERATURE_FILE, record)


def load_calibration(directory: Path) -> tuple[float, dict[str, float] | None]:
    """The model's temperature (1.0 when it has none) and its per-label offsets (None when it has none). A
    temperature that is not a positive number is refused (a negative one would reverse the label order, zero
    divides by zero), as are offsets that do not give a finite number for each label."""
    record = _read_json(directory / TEMPERATURE_FILE)
    if record is None:
        return 1.0, None
    value = record.get("temperature") if isinstance(record, dict) else None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ModelLoadError(f"{directory / TEMPERATURE_FILE}: expected a number under 'temperature', found "
                             f"{value!r}; delete the file or train again with training.temperature_scaling")
    if not math.isfinite(value) or value <= 0:
        raise ModelLoadError(
            f"{directory / TEMPERATURE_FILE}: expected a positive temperature, found {value}; "
            "delete the file or train again with training.temperature_scaling"
        )
    bias = record.get("bias")
    if bias is None:
        return float(value), None
    if (not isinstance(bias, dict) or set(bias) != set(LABELS) or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in bias.values())):
        raise ModelLoadError(f"{directory / TEMPERATURE_FILE}: expected 'bias' to give a finite number for each "
                             f"of {', '.join(LABELS)}, found {bias!r}; delete the file or train again with "
                             "training.class_bias")
    return float(value), {label: float(bias[label]) for label in LABELS}


# ---------------------------------------------------------------- reports


def evaluation_dir(model_dir: Path, data_name: str) -> Path:
    """Where `evaluate` saves a report on `data_name` inside a model folder. A link on the way (an
    `evaluations/` that points elsewhere) is refused: the report would be written, and the folder it
    replaces deleted, outside the model folder."""
    folder = model_dir / EVAL_DIR
    target = folder / data_name.replace(":", "-")
    for path in (folder, target):
        if path.is_symlink():
            raise ModelLoadError(f"{path}: expected a folder inside the model folder, found a link to "
                                 f"{os.readlink(path)}; remove the link (reports are written inside the model only)")
    return target


def links_out(folder: Path) -> list[Path]:
    """The links under `folder` that point outside it (or to nothing): what an export or a load must not
    follow."""
    root = folder.resolve()
    found = []
    for path in sorted(folder.rglob("*")):
        if path.is_symlink() and not path.resolve().is_relative_to(root) or path.is_symlink() and not path.exists():
            found.append(path)
    return found


def check_no_links_out(folder: Path) -> None:
    """Refuse a model folder with links that lead out of it (a planted link would copy, or overwrite,
    files elsewhere)."""
    found = links_out(folder)
    if found:
        raise ModelLoadError(f"{found[0]}: expected the files of the model folder, found a link to "
                             f"{os.readlink(found[0])} outside it ({len(found)} such link(s)); copy the files in "
                             "instead of linking them")


def evaluation_reports(model_dir: Path) -> list[Path]:
    """report.json of every evaluation saved in the folder, by name."""
    return sorted((model_dir / EVAL_DIR).glob(f"*/{REPORT_JSON}"))


# ---------------------------------------------------------------- identity


@dataclass(frozen=True)
class PinnedFolder:
    """A model folder as it was when a command read it: which folder on disk, and its training run.

    `train --overwrite` replaces a folder by another under the same name; `check` tells whether
    that happened since the pin, so a report is never written into, or tagged as, the wrong model.
    """

    path: Path
    identity: tuple[int, int]
    run_id: str | None

    def check(self) -> None:
        """Raise ModelLoadError if `path` is no longer the folder pinned."""
        now = pin(self.path) if self.path.is_dir() else None
        if now is None or now.identity != self.identity:
            found = f"training run {now.run_id}" if now is not None else "no folder"
            raise ModelLoadError(
                f"{self.path}: expected the model folder of training run {self.run_id} that was evaluated, found it "
                f"replaced ({found}) while it was evaluated; nothing was written into it; evaluate again"
            )


def pin(directory: Path) -> PinnedFolder:
    """Pin a model folder: its device and inode (a replaced folder has others) and its run id."""
    stat = os.stat(directory)
    return PinnedFolder(directory, (stat.st_dev, stat.st_ino), read_run(directory).get("run_id"))
