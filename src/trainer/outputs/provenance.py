"""Provenance: which code, which locked packages and which machine produced a model or a report.

Every training and evaluation run records it (MLflow tags and artifacts, and `provenance.json` plus
`pip-freeze.txt` in the model or report folder), so a figure can be traced back to the code and
the environment that made it. `differences()` says how the code evaluating a model differs from
the code that trained it.

>>> record = collect(precision="fp32")
>>> record["precision"], record["bf16"], len(record["code_sha256"])
('fp32', False, 64)
"""

from __future__ import annotations

import hashlib
import json
import platform
import subprocess
import sys
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, distributions, version
from pathlib import Path
from typing import Any

from trainer.outputs.model_folder import FREEZE_FILE, PROVENANCE_FILE

LOCK_FILE = Path("requirements") / "lock.txt"

PACKAGE_DIR = Path(__file__).resolve().parents[1]  # src/trainer, the whole package
# The checkout this package runs from (src/trainer -> the project root), when it runs from one.
PROJECT_ROOT = PACKAGE_DIR.parents[1]
# Libraries whose version changes results; the full list is in pip-freeze.txt.
KEY_PACKAGES = ("torch", "transformers", "datasets", "scikit-learn", "mlflow", "onnxruntime", "syntok")
_GIT_TIMEOUT_S = 10


def trainer_version() -> str:
    try:
        return version("trainer")
    except PackageNotFoundError:
        return "unknown"


def code_sha256() -> str:
    """A hash over the package's own source (.py and .yaml): it identifies the code with or without git."""
    digest = hashlib.sha256()
    for path in sorted(PACKAGE_DIR.rglob("*")):
        if path.suffix in (".py", ".yaml") and "__pycache__" not in path.parts:
            digest.update(path.relative_to(PACKAGE_DIR).as_posix().encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def _git(*args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", "-C", str(PROJECT_ROOT), *args], capture_output=True, text=True, timeout=_GIT_TIMEOUT_S
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def git_state() -> dict[str, Any]:
    """The commit the code runs from and whether its tree has uncommitted changes (None outside git)."""
    commit = _git("rev-parse", "HEAD")
    if commit is None:
        return {"commit": None, "dirty": None}
    status = _git("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": None if status is None else bool(status)}


def lock_state() -> dict[str, Any]:
    """The lock file's path and sha256, when the project's lock is beside the code."""
    path = PROJECT_ROOT / LOCK_FILE
    if not path.is_file():
        return {"path": None, "sha256": None}
    return {"path": LOCK_FILE.as_posix(), "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}


def hardware() -> dict[str, Any]:
    """CPU model and the features that pick a precision, the cores torch uses, and the GPU if any."""
    import torch

    cpu = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {
        "cpu": cpu,
        "cpu_avx512_bf16": bool(torch.cpu._is_avx512_bf16_supported()),
        "cpu_amx": bool(torch.cpu._is_amx_tile_supported()),
        "torch_threads": torch.get_num_threads(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }


def collect(precision: str | None = None) -> dict[str, Any]:
    """Everything that identifies this run's code and environment; `precision` is the one the model ran in."""
    packages = {}
    for name in KEY_PACKAGES:
        try:
            packages[name] = version(name)
        except PackageNotFoundError:
            packages[name] = None
    return {
        "trainer_version": trainer_version(),
        "code_sha256": code_sha256(),
        "git": git_state(),
        "lock": lock_state(),
        "python": platform.python_version(),
        "packages": packages,
        "hardware": hardware(),
        "precision": precision,
        "bf16": precision == "bf16",
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def pip_freeze() -> str:
    """The installed distributions, as `pip freeze` lists them (importlib.metadata if pip is absent)."""
    try:
        done = subprocess.run(
            [sys.executable, "-m", "pip", "freeze", "--all"], capture_output=True, text=True, timeout=120
        )
        if done.returncode == 0 and done.stdout.strip():
            return done.stdout
    except (OSError, subprocess.TimeoutExpired):
        pass
    names = sorted({f"{d.metadata['Name']}=={d.version}" for d in distributions() if d.metadata["Name"]}, key=str.lower)
    return "\n".join(names) + "\n"


def write(directory: Path, record: dict[str, Any], freeze: str) -> None:
    """`provenance.json` and `pip-freeze.txt` into a model or report folder."""
    (directory / PROVENANCE_FILE).write_text(json.dumps(record, indent=2), encoding="utf-8")
    (directory / FREEZE_FILE).write_text(freeze, encoding="utf-8")


def read(directory: Path) -> dict[str, Any] | None:
    """A folder's provenance record, or None for folders written before provenance existed."""
    path = directory / PROVENANCE_FILE
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    return record if isinstance(record, dict) else None  # damaged: treated as absent, like an unreadable one


def tags(record: dict[str, Any]) -> dict[str, str]:
    """The provenance that fits in MLflow tags (the rest is logged as provenance.json)."""
    return {
        "trainer.version": str(record["trainer_version"]),
        "trainer.code_sha256": record["code_sha256"],
        "trainer.git_commit": str(record["git"]["commit"]),
        "trainer.git_dirty": str(record["git"]["dirty"]),
        "trainer.lock_sha256": str(record["lock"]["sha256"]),
        "trainer.python": record["python"],
        "trainer.torch": str(record["packages"].get("torch")),
        "trainer.hardware": record["hardware"]["gpu"] or record["hardware"]["cpu"],
        "trainer.precision": str(record["precision"]),
    }


def summary(record: dict[str, Any]) -> dict[str, Any]:
    """The provenance a report prints: version, commit (with +changes when dirty), lock, precision,
    hardware and date."""
    git = record.get("git") or {}
    commit = git.get("commit")
    return {
        "trainer_version": record.get("trainer_version"),
        "git_commit": f"{commit}{'+changes' if git.get('dirty') else ''}" if commit else None,
        "lock_sha256": (record.get("lock") or {}).get("sha256"),
        "precision": record.get("precision"),
        "hardware": (record.get("hardware") or {}).get("gpu") or (record.get("hardware") or {}).get("cpu"),
        "created": record.get("created"),
    }


def differences(trained: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """How the code and locked packages now differ from those that trained a model, one phrase each.

    >>> a = {"code_sha256": "1", "git": {"commit": "c1", "dirty": False}, "lock": {"sha256": "l"}}
    >>> differences(a, {**a, "code_sha256": "2", "git": {"commit": "c2", "dirty": False}})
    ['the code differs (commit c1 -> c2)']
    """
    found = []
    if trained.get("code_sha256") != current.get("code_sha256"):
        old, new = trained.get("git", {}), current.get("git", {})
        where = ""
        if old.get("commit") and new.get("commit"):
            where = f" (commit {str(old['commit'])[:12]}{'+changes' if old.get('dirty') else ''} -> "
            where += f"{str(new['commit'])[:12]}{'+changes' if new.get('dirty') else ''})"
        found.append(f"the code differs{where}")
    old_lock, new_lock = trained.get("lock", {}).get("sha256"), current.get("lock", {}).get("sha256")
    if old_lock and new_lock and old_lock != new_lock:
        found.append("the locked packages differ (requirements/lock.txt changed)")
    return found
