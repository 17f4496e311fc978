"""train(config): load config -> build dataset -> build model -> fit -> evaluate -> save -> track.

>>> result = train(load_config("configs/default.yaml"))  # doctest: +SKIP
>>> result.model_dir, result.metrics["test"]["macro_f1"]  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import f1_score

from trainer.infra import distributed

from trainer.models import encoders

from trainer.outputs import model_folder, provenance
from trainer.infra.secrets import mask_secrets
from trainer.infra.atomic import atomic_folder
from trainer.models.calibration import apply_temperature, fit_bias_and_temperature, fit_temperature
from trainer.outputs.card import write_card
from trainer.models.checkpoint import Checkpointer, checkpoint_dir, setting_differences
from trainer.config import ExperimentConfig, dump_yaml, portable, to_plain
from trainer.data.build import SPLITS, build_dataset
from trainer.errors import ConfigError, DataError
from trainer.workflows.evaluate import evaluate_rows, rows_from_dataset
from trainer.labels import LABEL2ID, LABELS
from trainer.infra.locks import output_lock
from trainer.metrics import flat_intervals, flat_metrics, reliability
from trainer.workflows.predict import Classifier
from trainer.workflows.recipe import pooled_sentences, prepare_run
from trainer.outputs.tracking import Tracker

log = logging.getLogger(__name__)


@dataclass
class TrainResult:
    """What a training run produced."""

    model_dir: Path
    metrics: dict[str, dict[str, Any]]
    run_id: str | None
    model_uri: str | None
    tracking_error: str | None = None
    seconds: float = 0.0


def train(
    config: ExperimentConfig,
    overwrite: bool = False,
    register_as: str | None = None,
    alias: str | None = None,
    resume: bool = False,
) -> TrainResult:
    """Train the configured backend, evaluate it on validation and test, save it, and track the run."""
    # One `train` of a run name at a time: a second one would delete the first's checkpoint and replace its model.
    main = distributed.is_main()
    with output_lock(config.model_dir, f"run '{config.run_name}'", "train of it") if main else nullcontext():
        return _train(config, overwrite, register_as, alias, resume)


def _train(
    config: ExperimentConfig, overwrite: bool, register_as: str | None, alias: str | None, resume: bool
) -> TrainResult:
    started = time.perf_counter()
    target = config.model_dir
    checkpointer, resume_run = _checkpointer(config, overwrite, resume)

    distributed.setup()
    if not distributed.is_main():
        # Ranks other than 0 train their shard and nothing else: no tracking, no files, no output.
        config = config.model_copy(update={"tracking": config.tracking.model_copy(update={"enabled": False})})
        distributed.barrier()  # rank 0 builds the dataset first; the others then reuse it

    log.info("1/5 dataset: %s", config.data.name)
    built = build_dataset(config.data)
    if distributed.is_main():
        distributed.barrier()
    if resume:
        _check_resumed_data(checkpointer, built.fingerprint)

    log.info("2/5 model: %s backend", config.model.backend)
    run = prepare_run(config, built)
    _warn_missing_labels(run.labels["train"], config.data.name)
    backend = run.backend
    record = provenance.collect(getattr(backend, "precision", "fp32"))
    freeze = provenance.pip_freeze()

    tags = {"trainer.kind": "train", "trainer.backend": config.model.backend, "trainer.dataset": config.data.name}
    tags |= provenance.tags(record)
    with Tracker(config.tracking, config.run_name, tags, resume_run_id=resume_run) as tracker:
        checkpointer.meta = {"run_id": tracker.run_id, "config": to_plain(config),
                             "dataset_fingerprint": built.fingerprint}
        datasets = _log_inputs(tracker, config, built, record, freeze, resumed=resume_run is not None)

        log.info("3/5 fit on %d sentences", len(run.texts["train"]))
        run.fit(tracker, checkpointer)
        if not distributed.is_main():
            return TrainResult(target, {}, None, None, "not rank 0", time.perf_counter() - started)

        log.info("4/5 evaluate on validation and test")
        classifier = Classifier(backend, str(target))
        val_probabilities, val_metrics = run.score("validation")
        temperature, bias = _calibrate(config, val_probabilities, run.labels["validation"])
        classifier.temperature, classifier.bias = temperature, bias
        calibrated = config.training.temperature_scaling or config.training.class_bias  # saved, offsets or not

        log.info("5/5 save to %s", target)
        project = model_folder.project_of(target)  # the folder records paths relative to it, none absolute
        test_rows = rows_from_dataset(built.dataset["test"], f"{config.data.name}:test", project)
        with atomic_folder(target) as tmp:
            backend.save(tmp)
            if calibrated:
                model_folder.save_temperature(tmp, temperature, f"{config.data.name}:validation", bias)
            report_dir = tmp / model_folder.TEST_REPORT_DIR
            block = {"model": model_folder.shown_path(target, project), "training_run": tracker.run_id,
                     "model_dataset": built.fingerprint,
                     **provenance.summary(record)}
            report, _ = evaluate_rows(classifier, test_rows, report_dir, f"{target.name} on {test_rows.name}",
                                      provenance_block=block)
            metrics = {"validation": val_metrics, "test": report["metrics"]}
            run_record = {"run_id": tracker.run_id, "tracking_uri": mask_secrets(tracker.uri), "model_name": config.run_name,
                          "dataset_fingerprint": built.fingerprint, "dataset": _dataset_summary(config, built.card)}
            model_folder.write_training_files(tmp, portable(config, project), metrics, run_record, project)
            provenance.write(tmp, record, freeze)
            write_card(tmp, target.name)
            model_folder.write_manifest(tmp)  # last: every file above, as saved
        checkpointer.remove()  # the model is saved: nothing left to resume

        model_uri = _log_outputs(tracker, config, target, test_rows.texts[:3], register_as, alias)
        # The kept epoch's figures under their own names (`val_*` are the per-epoch curves, whose latest
        # step is the last epoch, not the one kept), each linked to the logged model and its split.
        tracker.log_metrics(flat_metrics(val_metrics, "best_val"), model_id=tracker.model_id,
                            dataset=datasets.get("validation"))
        tracker.log_metrics({**flat_metrics(report["metrics"], "test"), "test_ece": report["calibration"]["ece"],
                             **flat_intervals(report["ci"], "test")}, model_id=tracker.model_id,
                            dataset=datasets.get("test"))
        if calibrated:
            tracker.log_metrics({"temperature": temperature, **{f"bias_{k}": v for k, v in (bias or {}).items()}})

    return TrainResult(target, metrics, tracker.run_id, model_uri, tracker.error, time.perf_counter() - started)


def _warn_missing_labels(train_labels: Sequence[str], dataset: str) -> None:
    """A label without a training sentence is one the model can never learn to give."""
    missing = [label for label in LABELS if label not in set(train_labels)]
    if missing:
        log.warning("dataset %s: no training sentence is labeled %s; the model cannot learn to predict %s "
                    "(add examples; trainer check-data lists each split's labels)",
                    dataset, ", ".join(missing), "it" if len(missing) == 1 else "them")


def _checkpointer(config: ExperimentConfig, overwrite: bool, resume: bool) -> tuple[Checkpointer, str | None]:
    """The run's checkpointer, and the MLflow run to continue with --resume; refuses an existing model folder."""
    target = config.model_dir
    checkpointer = Checkpointer(checkpoint_dir(target), config.training.checkpoint_every_steps)
    resume_run = None
    if resume:
        if not checkpointer.exists():
            raise ConfigError(
                f"--resume: expected a checkpoint of run '{config.run_name}' at {checkpointer.directory}, found none "
                "(only transformer runs that were interrupted leave one)"
            )
        meta = checkpointer.read_meta()
        _check_resumed_settings(meta, config)
        resume_run = meta.get("run_id")
    elif checkpointer.exists():
        log.warning("an interrupted run left %s; starting afresh (pass --resume to continue it)",
                    checkpointer.directory)
        checkpointer.remove()
    if target.exists() and not overwrite and not resume:
        raise ConfigError(
            f"run_name: expected a new run name, found existing model folder {target}; "
            "pass --overwrite or choose another name (--set run_name=...)"
        )
    return checkpointer, resume_run


def _check_resumed_settings(meta: dict[str, Any], config: ExperimentConfig) -> None:
    """--resume goes on only with the settings the checkpoint was trained with (else the result is neither)."""
    if "config" not in meta:
        log.warning("the checkpoint predates saved settings: --resume cannot check they are the same")
        return
    found = setting_differences(meta["config"], to_plain(config))
    if found:
        raise ConfigError(
            f"--resume: expected the settings the checkpoint of run '{config.run_name}' was trained with, found "
            f"{'; '.join(found)}; resume with the same config, or start afresh without --resume"
        )


def _check_resumed_data(checkpointer: Checkpointer, fingerprint: str) -> None:
    saved = checkpointer.read_meta().get("dataset_fingerprint")
    if saved is not None and saved != fingerprint:
        raise ConfigError(
            f"--resume: expected the dataset the checkpoint was trained on (fingerprint {saved[:12]}), found "
            f"{fingerprint[:12]}: its inputs changed; restore them, or start afresh without --resume"
        )


def _log_inputs(
    tracker: Tracker, config: ExperimentConfig, built: Any, record: dict[str, Any], freeze: str, resumed: bool
) -> dict[str, Any]:
    """The config, the provenance and the three splits (as dataset inputs) to the run; returns the
    MLflow datasets by split name (none when resumed: the run has them already)."""
    if resumed:
        tracker.set_tags(provenance.tags(record))  # the code that finished the run
    else:
        plain = portable(config, config.data.project)  # paths as in the project, not this machine's
        if "pretrained" in plain["model"]:  # the encoder used, not `None` for "the default"
            plain["model"]["pretrained"] = plain["model"]["pretrained"] or encoders.DEFAULT
            tracker.set_tags({"trainer.base_model": str(encoders.hub_id(plain["model"]["pretrained"]))})
        tracker.log_config(plain)
    tracker.log_provenance(record, freeze)
    datasets = {}
    for name in () if resumed else SPLITS:
        datasets[name] = tracker.log_dataset(
            built.dataset[name].to_pandas(),
            name=f"{config.data.name}-{name}",
            source=str(built.path),
            fingerprint=built.fingerprint,
            context="training" if name == "train" else name,
        )
    return datasets


def _log_outputs(
    tracker: Tracker, config: ExperimentConfig, target: Path, examples: list[str], register_as: str | None,
    alias: str | None,
) -> str | None:
    """The resolved config, the test report, the card and the model itself to the run."""
    tracker.log_text(dump_yaml(config), "config/resolved_config.yaml")
    tracker.log_report(target / model_folder.TEST_REPORT_DIR, model_folder.TEST_REPORT_DIR,
                       card=target / model_folder.CARD_FILE)
    return tracker.log_model(target, examples or ["The minister said talks failed."], register_as=register_as,
                             alias=alias)


def _dataset_summary(config: ExperimentConfig, card: dict[str, Any]) -> dict[str, Any]:
    """What the model card says of the training data: sources, counts per split and label, fingerprint."""
    sources = []
    for source in portable(config.data, config.data.project)["sources"]:
        where = source.get("path") or source.get("articles") or ""
        sources.append(f"{source['kind']}: {where}" if where else source["kind"])
    from trainer.config import TeacherSource
    from trainer.data.teacher import teacher_summary

    teachers = [teacher_summary(s, config.data.project) for s in config.data.sources if isinstance(s, TeacherSource)]
    return {
        "name": card["name"],
        "fingerprint": card["fingerprint"],
        "sources": sources,
        **({"distilled_from": teachers} if teachers else {}),
        "articles": card["articles"],
        "sentences": card["sentences"],
        "label_counts": card["label_counts"],
    }


def _calibrate(config: ExperimentConfig, probabilities: np.ndarray, labels: list[str],
               ) -> tuple[float, dict[str, float] | None]:
    """Fit a temperature (`temperature_scaling`), or a temperature and per-label offsets (`class_bias`), on
    validation when the config asks for it; report ECE and macro-F1 before and after."""
    training = config.training
    if not (training.temperature_scaling or training.class_bias) or not len(labels):
        return 1.0, None
    gold = np.array([LABEL2ID[label] for label in labels])
    offsets = None
    if training.class_bias:
        temperature, offsets = fit_bias_and_temperature(probabilities, gold)
        if offsets is None:
            log.warning("class_bias: validation has no %s sentence, so no offsets are fitted (a temperature only)",
                        " or ".join(sorted(set(LABELS) - set(labels))))
        else:
            offsets = offsets.round(4)  # as saved: the report and predict apply the same offsets
    else:
        temperature = fit_temperature(probabilities, gold)
    bias = None if offsets is None else {label: float(offsets[i]) for i, label in enumerate(LABELS)}
    before = reliability(probabilities.max(axis=1), probabilities.argmax(axis=1) == gold)["ece"]
    scaled = apply_temperature(probabilities, temperature, offsets)
    after = reliability(scaled.max(axis=1), scaled.argmax(axis=1) == gold)["ece"]
    f1 = [f1_score(gold, p.argmax(axis=1), average="macro", labels=range(len(LABELS))) for p in (probabilities, scaled)]
    log.info("temperature %.3f%s: validation ECE %.3f -> %.3f, macro-F1 %.3f -> %.3f", temperature,
             f", offsets {bias}" if bias else "", before, after, *f1)
    return temperature, bias


# ---------------------------------------------------------------- cross-validation


@dataclass
class CVResult:
    """Per-fold test metrics, their mean and spread, and the parent MLflow run."""

    folds: list[dict[str, Any]]
    summary: dict[str, dict[str, float]]
    run_id: str | None
    tracking_error: str | None


def cross_validate(config: ExperimentConfig, k: int) -> CVResult:
    """k-fold cross-validation grouped by article over all of the dataset's sentences.

    Each fold is held out once as test; a grouped tenth of the rest is validation (early stopping).
    One parent MLflow run, one nested run per fold; no model folder is written.
    """
    from sklearn.model_selection import StratifiedGroupKFold

    if k < 2:
        raise ConfigError(f"--cv: expected at least 2 folds, found {k}")
    built = build_dataset(config.data)
    _, labels, groups = pooled_sentences(built)
    if len(set(groups)) < k:
        raise DataError(f"--cv {k}: expected at least {k} articles, found {len(set(groups))}")
    y_arr, g_arr = np.array(labels), np.array(groups)
    outer = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=config.data.split.seed)
    folds: list[dict[str, Any]] = []
    tags = {"trainer.kind": "cross-validation", "trainer.backend": config.model.backend, "trainer.folds": str(k)}
    with Tracker(config.tracking, f"{config.run_name}-cv{k}", tags) as parent:
        parent.log_config(to_plain(config))
        for fold, (rest, test) in enumerate(outer.split(np.zeros(len(y_arr)), y_arr, g_arr), start=1):
            n_inner = max(2, min(10, len(set(g_arr[rest]))))  # about a tenth of the rest is validation
            inner = StratifiedGroupKFold(n_splits=n_inner, shuffle=True, random_state=config.data.split.seed + fold)
            fit_idx, val_idx = next(inner.split(np.zeros(len(rest)), y_arr[rest], g_arr[rest]))
            fit_idx, val_idx = rest[fit_idx], rest[val_idx]
            log.info("fold %d/%d: %d train, %d validation, %d test", fold, k, len(fit_idx), len(val_idx), len(test))
            with parent.child(f"{config.run_name}-fold{fold}", {"trainer.fold": str(fold)}) as child:
                run = prepare_run(config, built, folds={"train": fit_idx, "validation": val_idx, "test": test})
                run.fit(child)
                _, metrics = run.score("test")
                child.log_metrics(flat_metrics(metrics, "test"))
            folds.append(metrics)
        summary = _summarise(folds)
        parent.log_metrics({f"{name}_{stat}": v for name, stats in summary.items() for stat, v in stats.items()})
        parent.log_dict({"folds": folds, "summary": summary}, "cv/results.json")
    return CVResult(folds, summary, parent.run_id, parent.error)


def _summarise(folds: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Mean and standard deviation across folds of macro-F1, accuracy and each label's F1."""
    figures = {"macro_f1": [f["macro_f1"] for f in folds], "accuracy": [f["accuracy"] for f in folds]}
    for label in LABELS:
        figures[f"{label}_f1"] = [f["per_label"][label]["f1"] for f in folds]
    return {name: {"mean": float(np.mean(v)), "std": float(np.std(v, ddof=1))} for name, v in figures.items()}
