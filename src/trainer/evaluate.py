"""Evaluation: metrics on data the model never saw, the report files, and the `evaluate` entry point.

>>> result = evaluate("models/minilm-bundled", split="test")  # doctest: +SKIP
>>> result.metrics["macro_f1"]  # doctest: +SKIP
"""

from __future__ import annotations

import csv
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trainer.config import ExperimentConfig, TrackingConfig
from trainer.data.sources import read_jsonl, read_text
from trainer.errors import DataError, ModelLoadError
from trainer.labels import LABELS, check_labels
from trainer.metrics import compute_metrics, flat_metrics, format_table
from trainer.predict import Classifier, Prediction, load_classifier

log = logging.getLogger(__name__)

METRICS_FILE = "metrics.json"
REPORT_FILE = "classification_report.txt"
CONFUSION_FILE = "confusion_matrix.png"
MISCLASSIFIED_FILE = "misclassified.jsonl"
EVAL_DIR = "evaluations"
TEXT_KEYS = ("text", "sentence")


@dataclass
class EvalResult:
    """Metrics of one model on one set of labeled sentences, and where the report was written."""

    metrics: dict[str, Any]
    report_dir: Path
    run_id: str | None
    tracking_error: str | None
    slices: dict[str, dict[str, Any]] = field(default_factory=dict)


def load_labeled_file(path: Path) -> tuple[list[str], list[str]]:
    """Texts and labels from a JSONL or CSV file with a text (or sentence) column and a label column."""
    if not path.is_file():
        raise DataError(f"{path}: expected a labeled JSONL or CSV file, found nothing there (check the path)")
    rows: list[tuple[str, dict[str, Any]]] = []
    if path.suffix.lower() == ".csv":
        reader = csv.DictReader(read_text(path).splitlines())
        rows = [(f"{path}:{i}", row) for i, row in enumerate(reader, start=2)]
    else:
        rows = [(f"{path}:{i}", obj) for i, obj in read_jsonl(path)]
    texts, labels = [], []
    for where, row in rows:
        key = next((k for k in TEXT_KEYS if k in row), None)
        if key is None or "label" not in row:
            raise DataError(f"{where}: expected a 'text' (or 'sentence') and a 'label' field, found {sorted(row)}")
        texts.append(str(row[key]))
        labels.append(str(row["label"]))
    if not texts:
        raise DataError(f"{path}: expected labeled sentences, found none")
    check_labels(labels, str(path))
    return texts, labels


def score(classifier: Classifier, texts: list[str], gold: list[str]) -> tuple[dict[str, Any], list[Prediction]]:
    """Predict and compute the metrics."""
    predictions = classifier.predict(texts)
    return compute_metrics(gold, [p.label for p in predictions]), predictions


def plot_confusion(matrix: list[list[int]], path: Path, title: str) -> None:
    """Save the confusion matrix (counts, rows gold) as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    from sklearn.metrics import ConfusionMatrixDisplay

    fig, ax = plt.subplots(figsize=(5, 4.5), dpi=120)
    ConfusionMatrixDisplay(np.asarray(matrix), display_labels=list(LABELS)).plot(ax=ax, cmap="Blues", colorbar=False)
    ax.set_title(title, fontsize=10)
    ax.set_xlabel("predicted")
    ax.set_ylabel("gold")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def write_report(
    out_dir: Path, metrics: dict[str, Any], predictions: list[Prediction], gold: list[str], title: str
) -> None:
    """metrics.json, the text report, the confusion matrix image and the misclassified sentences."""
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / METRICS_FILE).write_text(json.dumps(metrics, indent=2), encoding="utf-8")
    (out_dir / REPORT_FILE).write_text(f"{title}\n\n{format_table(metrics)}\n", encoding="utf-8")
    plot_confusion(metrics["confusion_matrix"], out_dir / CONFUSION_FILE, title)
    with (out_dir / MISCLASSIFIED_FILE).open("w", encoding="utf-8") as handle:
        for prediction, label in zip(predictions, gold):
            if prediction.label != label:
                record = {
                    "text": prediction.text,
                    "gold": label,
                    "predicted": prediction.label,
                    "score": round(prediction.score, 4),
                    "probabilities": {k: round(v, 4) for k, v in prediction.probabilities.items()},
                }
                handle.write(json.dumps(record, ensure_ascii=False) + "\n")


def _model_training_config(model_dir: Path) -> ExperimentConfig | None:
    from trainer.train import RESOLVED_CONFIG

    path = model_dir / RESOLVED_CONFIG
    if not path.is_file():
        return None
    return ExperimentConfig.model_validate(json.loads(path.read_text(encoding="utf-8")))


def _split_data(model_dir: Path, split: str, dataset: Path | None) -> tuple[list[str], list[str], list[str], str]:
    """Texts, labels and sources of a split: of `dataset` if given, else of the model's own dataset."""
    from trainer.data.build import build_dataset, load_built

    if dataset is not None:
        built = load_built(dataset)
    else:
        config = _model_training_config(model_dir)
        if config is None:
            raise ModelLoadError(
                f"{model_dir}: has no training config to find its dataset; pass --data FILE or --dataset DIR"
            )
        built = build_dataset(config.data, progress=False)
    if split not in built.dataset:
        raise DataError(f"expected a split in {list(built.dataset)}, found {split!r}")
    part = built.dataset[split]
    names = part.features["label"].names
    sources = [s.split(":", 1)[0] + ":" + Path(s.split(":", 1)[-1]).name for s in part["source"]]
    return list(part["text"]), [names[i] for i in part["label"]], sources, f"{built.card['name']}:{split}"


def evaluate(
    model: str | Path,
    split: str | None = "test",
    data: str | Path | None = None,
    dataset: str | Path | None = None,
    output: Path | None = None,
    tracking: TrackingConfig | None = None,
) -> EvalResult:
    """Evaluate a saved model on a split of its own dataset, or on any labeled JSONL/CSV file."""
    from trainer.tracking import Tracker

    classifier = load_classifier(model)
    model_dir = Path(str(model))
    if data is not None:
        texts, gold = load_labeled_file(Path(data))
        sources, data_name = [], Path(data).stem
    else:
        texts, gold, sources, data_name = _split_data(
            model_dir, split or "test", Path(dataset) if dataset is not None else None
        )
    log.info("evaluating %s on %s (%d sentences)", model, data_name, len(texts))

    metrics, predictions = score(classifier, texts, gold)
    slices = {}
    if len(set(sources)) > 1:  # metrics per source, e.g. PolNeAR vs the bundled corpus in one test split
        for name in sorted(set(sources)):
            keep = [i for i, s in enumerate(sources) if s == name]
            slices[name] = compute_metrics([gold[i] for i in keep], [predictions[i].label for i in keep])
    report_dir = output or (model_dir / EVAL_DIR / data_name.replace(":", "-"))
    title = f"{model_dir.name} on {data_name}"
    write_report(report_dir, metrics, predictions, gold, title)

    run_meta = _training_run(model_dir)
    tags = {"trainer.kind": "evaluate", "trainer.model": str(model), "trainer.data": data_name}
    if run_meta:
        tags["trainer.training_run_id"] = run_meta
    tracking = tracking or TrackingConfig()
    with Tracker(tracking, f"evaluate-{model_dir.name}-{data_name.replace(':', '-')}", tags) as tracker:
        tracker.log_config({"model": str(model), "data": data_name, "n": len(texts)})
        tracker.log_metrics(flat_metrics(metrics, "eval"))
        for name, values in slices.items():
            tracker.log_metrics(flat_metrics(values, f"eval_{name.split(':')[0]}"))
        tracker.log_dict(slices, "evaluation/slices.json")
        for name in (METRICS_FILE, REPORT_FILE, CONFUSION_FILE, MISCLASSIFIED_FILE):
            tracker.log_artifact(report_dir / name, "evaluation")
    if slices:
        (report_dir / "slices.json").write_text(json.dumps(slices, indent=2), encoding="utf-8")
    return EvalResult(metrics, report_dir, tracker.run_id, tracker.error, slices)


def _training_run(model_dir: Path) -> str | None:
    from trainer.train import RUN_FILE

    path = model_dir / RUN_FILE
    if path.is_file():
        return json.loads(path.read_text(encoding="utf-8")).get("run_id")
    return None
