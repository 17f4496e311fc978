"""`trainer export`: a trained transformer folder made into a faster CPU model folder.

Formats:
- `onnx` (default): ONNX Runtime graph in fp32; the same labels as the source model.
- `onnx-int8`: the same graph with int8 matrix products (`models/onnx.py` says which).
- `int8`: static int8 (SmoothQuant W8A8 through oneDNN, `models/int8.py`), calibrated on real
  sentences, the feed-forward down-projections in bf16. The weights stay fp32 safetensors (nothing
  unpicklable is written) beside the calibration; the loader quantises them, and `precision: auto`
  runs int8 only where `int8.choose` finds it faster and within the agreement bound.

Every export is checked against its source on a few sentences before it is kept; see
benchmarks/README.md for speed and label agreement on 5,000 real sentences.
"""

from __future__ import annotations

import copy
import json
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from trainer.infra.atomic import atomic_folder
from trainer.errors import ConfigError, ModelLoadError
from trainer.outputs.model_folder import (
    EVAL_DIR,
    MODEL_META,
    TEMPERATURE_FILE,
    check_no_links_out,
    context_meta,
    read_meta,
    write_manifest,
    write_meta,
)
from trainer.registry import BACKENDS, EXPORTS, register_export

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


@register_export("onnx", "ONNX Runtime, fp32, the same labels (default)")
def write_onnx(source: Any, model_dir: Path, meta: dict[str, Any], folder: Path) -> None:
    """The fp32 ONNX Runtime graph, its tokenizer and meta."""
    _write_onnx(source, model_dir, folder, int8=False)


@register_export("onnx-int8", "ONNX Runtime, int8, faster, a few labels differ")
def write_onnx_int8(source: Any, model_dir: Path, meta: dict[str, Any], folder: Path) -> None:
    """The ONNX Runtime graph with int8 matrix products, its tokenizer and meta."""
    _write_onnx(source, model_dir, folder, int8=True)


def _write_onnx(source: Any, model_dir: Path, folder: Path, int8: bool) -> None:
    from trainer.models.onnx import export_onnx

    export_onnx(source, folder, int8=int8)
    source.tokenizer.save_pretrained(folder)
    calibration = model_dir / TEMPERATURE_FILE
    if calibration.is_file():  # the fitted temperature and per-label offsets (class_bias move labels): kept
        shutil.copy2(calibration, folder / TEMPERATURE_FILE)
    write_meta(folder, "onnx", max_length=source.max_length, base_model=source.base_model,
               quantize="int8" if int8 else None, exported_from=str(model_dir), **context_meta(source.context))


@register_export("int8", "static int8 (torch, oneDNN), calibrated on real sentences; auto runs it where it pays")
def write_torch_int8(source: Any, model_dir: Path, meta: dict[str, Any], folder: Path,
                     calibration: Sequence[str] | None = None) -> None:
    """Calibrate on half the sentences, check label agreement with fp32 and speed against bf16 on the
    other half, and write both with the fp32 weights."""
    from trainer.models import int8
    from trainer.models.transformer import TransformerBackend
    from trainer.outputs.provenance import hardware

    texts = list(calibration) if calibration is not None else int8.corpus_sentences()
    calibrate_on, check_on = texts[0::2][: int8.CALIBRATION_SENTENCES], texts[1::2]
    stats = int8.calibrate(source.model, lambda: source.predict_proba(calibrate_on))
    keep = int8.ffn_down_projections(source.model)
    reference = source.predict_proba(check_on).argmax(1)
    bf16 = TransformerBackend(training=source.training, model=copy.deepcopy(source.model).to(torch.bfloat16),
                              tokenizer=source.tokenizer, max_length=source.max_length, context=source.context)
    bf16.precision = "bf16"
    quantized = TransformerBackend(training=source.training, model=int8.quantize_static(
        copy.deepcopy(source.model), stats, keep), tokenizer=source.tokenizer, max_length=source.max_length,
        context=source.context)
    quantized.precision = "int8"
    timings = {}
    for name, backend in (("bf16", bf16), ("int8", quantized)):
        backend.predict_proba(check_on[:64])  # warm-up
        start = time.perf_counter()
        predicted = backend.predict_proba(check_on).argmax(1)
        timings[name] = time.perf_counter() - start
    # links are copied as links (none leads out: export_model checked), never as the files they point to
    shutil.copytree(model_dir, folder, ignore=shutil.ignore_patterns(EVAL_DIR), dirs_exist_ok=True, symlinks=True)
    int8.save_calibration(folder / int8.INT8_FILE, stats)
    check = {"alpha": int8.ALPHA, "keep": keep, "calibrated": len(calibrate_on), "checked": len(check_on),
             "agreement": float((predicted == reference).mean()), "speedup_vs_bf16": timings["bf16"] / timings["int8"],
             "cpu": hardware()["cpu"]}
    (folder / MODEL_META).write_text(json.dumps({**meta, "quantize": "int8", "int8": check}, indent=2),
                                     encoding="utf-8")


def export_model(model_dir: Path, output: Path, format: str = "onnx") -> ExportCheck:
    """Write `output`, a model folder in `format`, from the transformer folder `model_dir`."""
    from trainer.models import load_backend

    exporter = EXPORTS.get(format, "--format: ")
    inside = output.resolve() != model_dir.resolve() and output.resolve().is_relative_to(model_dir.resolve())
    if inside:  # `train --overwrite` replaces that folder whole (the folder itself is refused as existing)
        raise ConfigError(f"--output: expected a folder outside the model folder {model_dir}, found {output} inside "
                          "it; choose another folder")
    check_no_links_out(model_dir)
    meta = read_meta(model_dir)
    backend = meta.get("backend")
    exportable = [name for name in BACKENDS.names() if BACKENDS.get(name).exportable]
    if backend not in exportable or meta.get("quantize"):
        found = backend if backend not in exportable else "an int8 export"
        raise ModelLoadError(f"{model_dir}: expected a trained {' or '.join(exportable)} model to export, "
                             f"found {found!r}")
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
