"""`trainer export`: a trained transformer folder made into a faster CPU model folder.

Formats:
- `onnx` (default): ONNX Runtime graph in fp32; the same labels as the source model.
- `onnx-int8`: the same graph with int8 matrix products (`models/onnx.py` says which).
- `int8`: torch dynamic quantisation; the weights stay fp32 safetensors (nothing unpicklable is
  written) and the metadata asks the loader to quantise the linear layers.

Every export is checked against its source on a few sentences before it is kept; see
benchmarks/README.md for speed and label agreement on 5,000 real sentences.
"""

from __future__ import annotations

import functools
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from trainer.atomic import atomic_folder
from trainer.errors import ConfigError, ModelLoadError
from trainer.model_folder import MODEL_META, EVAL_DIR, read_meta, write_manifest, write_meta
from trainer.registry import EXPORTS, ExportFormat

# Sentences to compare an export with its source on: short, long, quoted, hedged.
PROBES = (
    "The minister said the talks had failed.",
    "Shares rose.",
    "Rebels reportedly seized the airport on Sunday, though the claim could not be independently verified.",
    '"We will rebuild," she said.',
    "The bridge, which opened in 1932, carries about 40,000 vehicles a day across the river.",
    "It is unclear how many people were inside the building when it collapsed late on Tuesday night.",
    "According to police, the suspect fled on foot.",
    "Prices are expected to rise further next year, analysts at the bank wrote in a note to clients.",
)


@dataclass(frozen=True)
class ExportCheck:
    """How the export compares with its source on PROBES."""

    max_probability_diff: float
    label_agreement: float


def _write_onnx(source: Any, model_dir: Path, meta: dict[str, Any], folder: Path, int8: bool) -> None:
    from trainer.models.onnx import export_onnx

    export_onnx(source, folder, int8=int8)
    source.tokenizer.save_pretrained(folder)
    write_meta(folder, "onnx", max_length=source.max_length, base_model=source.base_model,
               quantize="int8" if int8 else None, exported_from=str(model_dir))


def _write_torch_int8(source: Any, model_dir: Path, meta: dict[str, Any], folder: Path) -> None:
    shutil.copytree(model_dir, folder, ignore=shutil.ignore_patterns(EVAL_DIR), dirs_exist_ok=True)
    (folder / MODEL_META).write_text(json.dumps({**meta, "quantize": "int8"}, indent=2), encoding="utf-8")


EXPORTS.register("onnx", ExportFormat(
    functools.partial(_write_onnx, int8=False), "ONNX Runtime, fp32, the same labels (default)"))
EXPORTS.register("onnx-int8", ExportFormat(
    functools.partial(_write_onnx, int8=True), "ONNX Runtime, int8, faster, a few labels differ"))
EXPORTS.register("int8", ExportFormat(
    _write_torch_int8, "torch dynamic int8, no extra packages, more labels differ"))


def export_model(model_dir: Path, output: Path, format: str = "onnx") -> ExportCheck:
    """Write `output`, a model folder in `format`, from the transformer folder `model_dir`."""
    from trainer.models import load_backend

    exporter = EXPORTS.get(format, "--format: ")
    meta = read_meta(model_dir)
    if meta.get("backend") != "transformer" or meta.get("quantize"):
        found = meta.get("backend") if meta.get("backend") != "transformer" else "an int8 export"
        raise ModelLoadError(f"{model_dir}: expected a trained transformer model to export, found {found!r}")
    def still_new() -> None:  # checked again under the swap lock: two exports at once never replace each other
        if output.exists():
            raise ConfigError(f"--output: expected a new folder, found existing {output}")

    still_new()
    source = load_backend(model_dir, precision="fp32")  # exported graphs and their check are fp32
    reference = source.predict_proba(list(PROBES))
    with atomic_folder(output, check=still_new) as tmp:
        exporter.run(source, model_dir, meta, tmp)
        write_manifest(tmp)
        exported = load_backend(tmp).predict_proba(list(PROBES))
        check = ExportCheck(
            max_probability_diff=float(np.abs(exported - reference).max()),
            label_agreement=float((exported.argmax(1) == reference.argmax(1)).mean()),
        )
        if format == "onnx" and check.max_probability_diff > 1e-3:
            raise ModelLoadError(
                f"{output}: expected the fp32 ONNX export to match its source within 1e-3, found a probability "
                f"{check.max_probability_diff:.2g} apart; export with --format int8 instead and report this model"
            )
    return check
