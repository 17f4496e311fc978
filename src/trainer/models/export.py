"""`trainer export`: a copy of a transformer model folder that loads as dynamic int8.

The weights stay fp32 safetensors (nothing unpicklable is written); the metadata asks the loader to
quantise the linear layers. Faster on CPUs without native bf16; see benchmarks/README.md.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from trainer.atomic import atomic_folder
from trainer.errors import ConfigError, ModelLoadError
from trainer.models.base import MODEL_META, read_meta


def export_int8(model_dir: Path, output: Path) -> Path:
    """Copy `model_dir` to `output` with `quantize: int8` in its metadata."""
    meta = read_meta(model_dir)
    if meta.get("backend") != "transformer":
        raise ModelLoadError(f"{model_dir}: expected a transformer model to quantise, found {meta.get('backend')!r}")
    if output.exists():
        raise ConfigError(f"--output: expected a new folder, found existing {output}")
    with atomic_folder(output) as tmp:
        shutil.copytree(model_dir, tmp, ignore=shutil.ignore_patterns("evaluations"), dirs_exist_ok=True)
        (tmp / MODEL_META).write_text(json.dumps({**meta, "quantize": "int8"}, indent=2), encoding="utf-8")
    return output
