"""train(config): load config -> build dataset -> build model -> fit -> evaluate -> save -> track.

>>> result = train(load_config("configs/default.yaml"))  # doctest: +SKIP
>>> result.model_dir, result.metrics["test"]["macro_f1"]  # doctest: +SKIP
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trainer.config import ExperimentConfig, dump_yaml, to_plain
from trainer.data.build import build_dataset
from trainer.errors import ConfigError
from trainer.evaluate import CONFUSION_FILE, METRICS_FILE, MISCLASSIFIED_FILE, REPORT_FILE, score, write_report
from trainer.labels import LABELS
from trainer.metrics import flat_metrics
from trainer.models import create_backend
from trainer.predict import Classifier

log = logging.getLogger(__name__)

RESOLVED_CONFIG = "training_config.json"
RESOLVED_CONFIG_YAML = "training_config.yaml"
RUN_FILE = "run.json"
REPORT_DIR = "test_report"


@dataclass
class TrainResult:
    """What a training run produced."""

    model_dir: Path
    metrics: dict[str, dict[str, Any]]
    run_id: str | None
    model_uri: str | None
    tracking_error: str | None = None
    seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)


def _texts_labels(split: Any) -> tuple[list[str], list[str]]:
    names = split.features["label"].names
    return list(split["text"]), [names[i] for i in split["label"]]


def train(config: ExperimentConfig, overwrite: bool = False) -> TrainResult:
    """Train the configured backend, evaluate it on validation and test, save it, and track the run."""
    from trainer.tracking import Tracker

    started = time.perf_counter()
    target = config.model_dir
    if target.exists() and not overwrite:
        raise ConfigError(
            f"run_name: expected a new run name, found existing model folder {target}; "
            "pass --overwrite or choose another name (--set run_name=...)"
        )

    log.info("1/5 dataset: %s", config.data.name)
    built = build_dataset(config.data)
    train_texts, train_labels = _texts_labels(built.dataset["train"])
    val_texts, val_labels = _texts_labels(built.dataset["validation"])
    test_texts, test_labels = _texts_labels(built.dataset["test"])

    log.info("2/5 model: %s backend", config.model.backend)
    backend = create_backend(config)

    tags = {"trainer.kind": "train", "trainer.backend": config.model.backend, "trainer.dataset": config.data.name}
    with Tracker(config.tracking, config.run_name, tags) as tracker:
        tracker.log_config(to_plain(config))
        for name in ("train", "validation", "test"):
            tracker.log_dataset(
                built.dataset[name].to_pandas(),
                name=f"{config.data.name}-{name}",
                source=str(built.path),
                fingerprint=built.fingerprint,
                context="training" if name == "train" else name,
            )

        log.info("3/5 fit on %d sentences", len(train_texts))
        backend.fit(
            train_texts,
            train_labels,
            validation=(val_texts, val_labels),
            on_epoch=lambda epoch, metrics: tracker.log_metrics(metrics, step=epoch),
        )

        log.info("4/5 evaluate on validation and test")
        classifier = Classifier(backend, str(target))
        val_metrics, _ = score(classifier, val_texts, val_labels)
        test_metrics, test_predictions = score(classifier, test_texts, test_labels)
        metrics = {"validation": val_metrics, "test": test_metrics}

        log.info("5/5 save to %s", target)
        _save_atomically(
            target,
            backend,
            config,
            metrics,
            run={"run_id": tracker.run_id, "tracking_uri": tracker.uri, "dataset_fingerprint": built.fingerprint},
            report=(test_predictions, test_labels),
        )
        tracker.log_metrics({**flat_metrics(val_metrics, "val"), **flat_metrics(test_metrics, "test")})
        tracker.log_text(dump_yaml(config), "config/resolved_config.yaml")
        for name in (REPORT_FILE, CONFUSION_FILE, METRICS_FILE, MISCLASSIFIED_FILE):
            tracker.log_artifact(target / REPORT_DIR / name, "test_report")
        model_uri = tracker.log_model(target, input_example=test_texts[:3] or ["The minister said talks failed."])

    seconds = time.perf_counter() - started
    return TrainResult(target, metrics, tracker.run_id, model_uri, tracker.error, seconds)


def _save_atomically(
    target: Path,
    backend: Any,
    config: ExperimentConfig,
    metrics: dict[str, Any],
    run: dict[str, Any],
    report: tuple[list[Any], list[str]],
) -> None:
    """Write the whole model folder beside the target, then rename it into place."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.parent / f".{target.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    backend.save(tmp)
    (tmp / RESOLVED_CONFIG).write_text(json.dumps(to_plain(config), indent=2), encoding="utf-8")
    (tmp / RESOLVED_CONFIG_YAML).write_text(dump_yaml(config), encoding="utf-8")
    (tmp / METRICS_FILE).write_text(json.dumps(metrics, indent=2), encoding="utf-8")
    (tmp / RUN_FILE).write_text(json.dumps({**run, "labels": list(LABELS)}, indent=2), encoding="utf-8")
    predictions, gold = report
    write_report(tmp / REPORT_DIR, metrics["test"], predictions, gold, f"{target.name} on {config.data.name}:test")
    old = target.parent / f".{target.name}.old-{os.getpid()}"
    if target.exists():
        target.rename(old)
    tmp.rename(target)
    shutil.rmtree(old, ignore_errors=True)
