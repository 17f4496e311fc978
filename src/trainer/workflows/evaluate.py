"""Evaluation that a results section can use: metrics with bootstrap intervals (by article),
calibration, error analysis and slices, on any labeled data, as one JSON + HTML report per run.

>>> result = evaluate("models/minilm-bundled", split="test")  # doctest: +SKIP
>>> result.metrics["macro_f1"], result.report["ci"]["macro_f1"]  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import heapq
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from trainer.outputs import model_folder, provenance
from trainer.outputs.card import write_card
from trainer.config import TrackingConfig
from trainer.data.sources import read_table
from trainer.infra.atomic import atomic_folder
from trainer.errors import ConfigError, DataError, ModelLoadError
from trainer.labels import LABEL2ID, LABELS
from trainer.infra.locks import swap_lock
from trainer.metrics import (
    N_RESAMPLES,
    bootstrap_ci,
    check_resamples,
    compute_metrics,
    confusion_rates,
    flat_intervals,
    flat_metrics,
    reliability,
    share_intervals,
)
from trainer.workflows.predict import Classifier, is_mlflow_uri, load_classifier, local_model, model_label, uri_label
from trainer.outputs.report import MISCLASSIFIED_FILE, PREDICTIONS_FILE, write_report
from trainer.outputs.tracking import Tracker

log = logging.getLogger(__name__)

TEXT_KEYS = ("text", "sentence")
GROUP_KEYS = ("article", "article_id", "doc", "document")
# A metadata column is sliced on when it has at most this many distinct values (publisher, beat, source).
MAX_SLICE_VALUES = 30
# Columns of a labeled file that say where a sentence stands: shown with each mistake, never sliced on.
CONTEXT_KEYS = ("paragraph", "sentence_index", "paragraph_index")
TOP_MISTAKES = 5


@dataclass
class LabeledRows:
    """Sentences to evaluate on: texts, gold labels, article groups and metadata columns."""

    name: str
    texts: list[str]
    gold: list[str]
    groups: list[str] | None = None
    meta: dict[str, list[str]] = field(default_factory=dict)
    dataset: dict[str, str] | None = None  # a built dataset's folder (relative to the project) and fingerprint
    # where each sentence stands, for reading a mistake (never sliced on): its paragraph or neighbours, index
    context: dict[str, list[Any]] = field(default_factory=dict)


@dataclass
class EvalResult:
    """Figures of one model on one set of labeled sentences, and where the report was written."""

    metrics: dict[str, Any]
    report_dir: Path
    run_id: str | None
    tracking_error: str | None
    report: dict[str, Any] = field(default_factory=dict)
    predicted: list[str] = field(default_factory=list)


# ---------------------------------------------------------------- inputs


def rows_from_file(path: Path, label_map: dict[str, str] | None = None) -> LabeledRows:
    """A JSONL or CSV file with a text (or sentence) and a label column; other columns are metadata."""
    from trainer.config import LabeledSource
    from trainer.data.sources import labeled_examples

    if not path.is_file():
        raise DataError(f"{path}: expected a labeled JSONL or CSV file, found nothing there (check the path)")
    table = list(read_table(path))
    if not table:
        raise DataError(f"{path}: expected labeled sentences, found none")
    where, row = table[0]
    text_column = next((k for k in TEXT_KEYS if k in row), None)
    if text_column is None or "label" not in row:
        raise DataError(f"{where}: expected a 'text' (or 'sentence') and a 'label' field, found {sorted(row)}")
    group_column = next((k for k in GROUP_KEYS if k in row), None)
    mapping = label_map or {}
    # Names outside the scheme are reported by the reader, with the line they are on.
    source = LabeledSource.model_construct(path=path, text_column=text_column, label_column="label",
                                           article_column=group_column, label_map=mapping, exclude_articles=None)
    try:
        result = labeled_examples(iter(table), source, path.stem, keep_meta=True)
    except DataError as error:
        raise DataError(f"{error} (use --label-map THEIRS=OURS for other names)") from None
    examples = result.examples
    if result.skipped:
        log.warning("%s: left out %s", path, ", ".join(f"{k}: {v}" for k, v in sorted(result.skipped.items())))
    columns = sorted({k for e in examples for k in e.meta} - set(CONTEXT_KEYS))
    return LabeledRows(
        path.stem,
        [e.text for e in examples],
        [e.label or "" for e in examples],
        [e.article for e in examples] if group_column else None,
        {c: typed_column([e.meta.get(c) for e in examples]) for c in columns},
        context={c: [e.meta.get(c) for e in examples] for c in CONTEXT_KEYS if any(c in e.meta for e in examples)},
    )


def typed_column(values: list[Any]) -> list[Any]:
    """A metadata column as a report keeps it: true/false (JSON booleans, or a CSV's "True"/"false") as
    booleans, None where a row has no value, anything else as text.

    >>> typed_column([True, None, "False"]), typed_column(["x", 2, None])
    ([True, None, False], ['x', '2', ''])
    """
    words = {"true": True, "false": False}
    present = [v for v in values if v not in (None, "")]
    if present and all(isinstance(v, bool) or str(v).strip().lower() in words for v in present):
        return [None if v in (None, "") else v if isinstance(v, bool) else words[str(v).strip().lower()]
                for v in values]
    return ["" if v is None else str(v) for v in values]


def rows_from_data_config(path: Path) -> LabeledRows:
    """Every sentence of a data config's sources (anything build-data reads), without splitting."""
    from trainer.config import load_data_config
    from trainer.data.build import apply_rules, example_texts
    from trainer.data.sources import read_source

    config = load_data_config(path)
    root = config.project
    results = [read_source(s, num_proc=config.num_proc, progress=False) for s in config.sources]
    apply_rules(config, results)
    examples = [e for r in results for e in r.examples]
    if not examples:
        raise DataError(f"{path}: expected labeled sentences in its sources, found none")
    groups, texts = [f"{portable_source(e.source, root)}/{e.article}" for e in examples], example_texts(examples)
    indices = [e.sentence_index for e in examples]
    return LabeledRows(
        config.name, texts, [e.label or "" for e in examples], groups,
        {"source": [e.source.split(":", 1)[0] for e in examples], "label_source": [e.label_source for e in examples],
         "beat": [e.beat for e in examples]},
        context={"sentence_index": indices, "context": neighbours(groups, indices, texts)},
    )


def rows_from_split(model_dir: Path, split: str, dataset: Path | None = None) -> LabeledRows:
    """A split of a built dataset: `dataset` if given, else the one the model was trained on, built (or
    reused) in the project the model folder lies in now, from that project's files."""
    from trainer.data.build import build_dataset, load_built

    project = model_folder.project_of(model_dir)
    if dataset is not None:
        built = load_built(dataset)
    else:
        config = model_folder.read_training_config(model_dir)
        if config is None:
            raise ModelLoadError(
                f"{model_dir}: has no training config to find its dataset; pass --data FILE or --dataset DIR"
            )
        built = build_dataset(config.data, progress=False)
        trained_on = model_folder.read_run(model_dir).get("dataset_fingerprint")
        if trained_on and trained_on != built.fingerprint:
            log.warning("%s: the dataset built here (%s, fingerprint %s) is not the one the model was trained on "
                        "(fingerprint %s): its inputs or settings differ in this project", model_dir,
                        model_folder.shown_path(built.path, project), built.fingerprint[:12], trained_on[:12])
    if split not in built.dataset:
        raise DataError(f"expected a split in {list(built.dataset)}, found {split!r}")
    rows = rows_from_dataset(built.dataset[split], f"{built.card['name']}:{split}", project)
    rows.dataset = {"path": model_folder.shown_path(built.path, project), "fingerprint": built.fingerprint}
    log.info("data: split %s of %s (fingerprint %s)", split, rows.dataset["path"], built.fingerprint[:12])
    return rows


def rows_from_dataset(part: Any, name: str, root: Path | None = None) -> LabeledRows:
    """LabeledRows from one split of a built dataset (a `datasets.Dataset`); article ids name their
    source's files relative to `root` (the project), never by absolute path."""
    from trainer.data.build import split_texts

    names = part.features["label"].names
    sources = [s.split(":", 1)[0] for s in part["source"]]
    groups = [f"{portable_source(s, root)}/{a}" for s, a in zip(part["source"], part["article"])]
    texts, indices = split_texts(part), list(part["sentence_index"])
    return LabeledRows(
        name, texts, [names[i] for i in part["label"]], groups,
        {"source": sources, "beat": list(part["beat"]), "label_source": list(part["label_source"])},
        context={"sentence_index": indices, "context": neighbours(groups, indices, texts)},
    )


def neighbours(groups: list[str], indices: list[int], texts: list[str]) -> list[str]:
    """Each sentence with the one before and after it in its article (a built dataset keeps sentences,
    not paragraphs), the sentence itself in [brackets].

    >>> neighbours(["a", "a", "a"], [0, 1, 2], ["One.", "Two.", "Three."])[1]
    'One. [Two.] Three.'
    """
    position = {(g, i): t for g, i, t in zip(groups, indices, texts)}
    return [" ".join(part for part in (position.get((g, i - 1), ""), f"[{t}]", position.get((g, i + 1), "")) if part)
            for g, i, t in zip(groups, indices, texts)]


def portable_source(source: str, root: Path | None) -> str:
    """A source id (`kind:path`) with its path relative to `root`, as reports record it.

    >>> portable_source("corpus:/p/data/corpus/articles", Path("/p"))
    'corpus:data/corpus/articles'
    """
    kind, _, where = source.partition(":")
    if root is None or not where or not Path(where).is_absolute():
        return source
    return f"{kind}:{model_folder.shown_path(where, root)}"


# ---------------------------------------------------------------- scoring


def score_stream(
    classifier: Classifier, rows: LabeledRows, out_dir: Path, top_k: int = TOP_MISTAKES
) -> tuple[np.ndarray, np.ndarray, dict[str, list[dict[str, Any]]]]:
    """Predict in chunks, keeping label ids, confidences and the probabilities as small arrays.

    Misclassified sentences (with their metadata) are written to misclassified.jsonl as they come;
    every sentence goes to predictions.parquet at the end. The `top_k` most confident mistakes per
    (gold, predicted) pair are kept in small heaps.
    """
    n = len(rows.texts)
    predicted = np.empty(n, dtype=np.int8)
    probabilities = np.empty((n, len(LABELS)), dtype=np.float32)
    heaps: dict[tuple[str, str], list[tuple[float, int, dict[str, Any]]]] = {}
    out_dir.mkdir(parents=True, exist_ok=True)
    from trainer.data.rules import RuleLabeler, rules_path

    labeler = RuleLabeler.from_yaml(rules_path(None))  # each mistake's rule cues, the evidence a reader checks
    with (out_dir / MISCLASSIFIED_FILE).open("w", encoding="utf-8") as handle:
        for i, prediction in enumerate(classifier.iter_predict(iter(rows.texts))):
            predicted[i] = LABEL2ID[prediction.label]
            probabilities[i] = [prediction.probabilities[label] for label in LABELS]
            gold = rows.gold[i]
            if prediction.label == gold:
                continue
            record = {
                "text": prediction.text,
                "gold": gold,
                "predicted": prediction.label,
                "score": round(prediction.score, 4),
                "probabilities": {k: round(v, 4) for k, v in prediction.probabilities.items()},
                **({"article": rows.groups[i]} if rows.groups is not None else {}),
                **{column: values[i] for column, values in rows.context.items()},
                "rule_cues": labeler.label(prediction.text).fired,
                **{column: values[i] for column, values in rows.meta.items()},
            }
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
            heap = heaps.setdefault((gold, prediction.label), [])
            item = (prediction.score, -i, record)
            if len(heap) < top_k:
                heapq.heappush(heap, item)
            else:
                heapq.heappushpop(heap, item)
    write_predictions(out_dir / PREDICTIONS_FILE, rows, predicted, probabilities)
    mistakes = {
        f"{gold} -> {pred}": [r for _, _, r in sorted(heap, key=lambda x: (-x[0], -x[1]))]
        for (gold, pred), heap in sorted(heaps.items())
    }
    confidence = probabilities[np.arange(n), predicted.astype(np.int64)] if n else np.empty(0, dtype=np.float32)
    return predicted, confidence, mistakes


def write_predictions(path: Path, rows: LabeledRows, predicted: np.ndarray, probabilities: np.ndarray) -> None:
    """Every sentence with its metadata columns, gold and predicted label, and the probabilities (p_<label>)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    columns: dict[str, Any] = {"text": rows.texts}
    if rows.groups is not None:
        columns["article"] = rows.groups
    for column, values in rows.meta.items():
        if column not in ("text", "article"):  # booleans stay booleans; anything else is text
            columns[column] = values if all(v is None or isinstance(v, bool) for v in values) else list(map(str, values))
    columns["gold"] = rows.gold
    columns["predicted"] = [LABELS[i] for i in predicted]
    columns["correct"] = [g == LABELS[i] for g, i in zip(rows.gold, predicted)]
    for j, label in enumerate(LABELS):
        columns[f"p_{label}"] = probabilities[:, j]
    pq.write_table(pa.table(columns), path)


def data_fingerprint(rows: LabeledRows) -> str:
    """SHA-256 of the evaluated sentences and their gold labels, in order; a sentence's neighbours count
    where it has them (the same sentences with context are other data for a model that reads it)."""
    digest = hashlib.sha256()
    for text, gold in zip(rows.texts, rows.gold):
        before, after = getattr(text, "before", ""), getattr(text, "after", "")
        neighbours = f"\t{before}\t{after}" if before or after else ""
        digest.update(f"{gold}\t{text}{neighbours}\n".encode())
    return digest.hexdigest()


def build_report(
    title: str,
    rows: LabeledRows,
    predicted_ids: np.ndarray,
    confidence: np.ndarray,
    mistakes: dict[str, list[dict[str, Any]]],
    n_resamples: int = N_RESAMPLES,
    rates: np.ndarray | None = None,
) -> dict[str, Any]:
    """Every figure of one evaluation as plain data. With `rates` (the model's confusion rates on
    held-out data), the label shares are also adjusted for the model's errors."""
    predicted = [LABELS[i] for i in predicted_ids]
    metrics = compute_metrics(rows.gold, predicted)
    gold_ids = np.array([LABEL2ID[g] for g in rows.gold])
    slices: dict[str, dict[str, Any]] = {}
    for column, values in rows.meta.items():
        distinct = sorted(set(values), key=str)
        if 1 < len(distinct) <= MAX_SLICE_VALUES:
            slices[column] = {}
            for value in distinct:
                keep = [i for i, v in enumerate(values) if v == value]
                gold, pred = [rows.gold[i] for i in keep], [predicted[i] for i in keep]
                groups = [rows.groups[i] for i in keep] if rows.groups is not None else None
                slices[column][str(value)] = {**compute_metrics(gold, pred),
                                              "ci": bootstrap_ci(gold, pred, groups, n_resamples=n_resamples)}
    return {
        "title": title,
        "data": rows.name,
        "metrics": metrics,
        "ci": bootstrap_ci(rows.gold, predicted, rows.groups, n_resamples=n_resamples),
        "ci_unit": "articles" if rows.groups is not None else "sentences",
        "n_resamples": n_resamples,
        "calibration": reliability(confidence, predicted_ids == gold_ids),
        "slices": slices,
        "confident_mistakes": mistakes,
        "shares": {
            **share_intervals(predicted_ids, rows.groups, rates, n_resamples=n_resamples),
            "gold": {label: float(np.mean(gold_ids == i)) if len(gold_ids) else 0.0 for i, label in enumerate(LABELS)},
            "adjusted_with": "the confusion rates of the model's validation split" if rates is not None else None,
        },
    }


def evaluate_rows(
    classifier: Classifier, rows: LabeledRows, out_dir: Path, title: str, n_resamples: int = N_RESAMPLES,
    rates: np.ndarray | None = None, provenance_block: dict[str, Any] | None = None,
) -> tuple[dict[str, Any], list[str]]:
    """Score `rows`, write the whole report into `out_dir`; return the report and the predictions."""
    predicted_ids, confidence, mistakes = score_stream(classifier, rows, out_dir)
    report = build_report(title, rows, predicted_ids, confidence, mistakes, n_resamples, rates)
    report["provenance"] = {**(provenance_block or {}), "data": rows.name, "data_fingerprint": data_fingerprint(rows)}
    write_report(out_dir, report)
    return report, [LABELS[i] for i in predicted_ids]


def load_rows(
    model_dir: Path,
    split: str | None = "test",
    data: str | Path | None = None,
    dataset: str | Path | None = None,
    data_config: str | Path | None = None,
    label_map: dict[str, str] | None = None,
) -> LabeledRows:
    """The sentences an evaluation runs on, from whichever input was named."""
    if data is not None:
        return rows_from_file(Path(data), label_map)
    if data_config is not None:
        return rows_from_data_config(Path(data_config))
    return rows_from_split(model_dir, split or "test", Path(dataset) if dataset is not None else None)


@dataclass
class _Evaluation:
    """A written evaluation report and what its MLflow run records."""

    model: str | Path
    name: str
    rows: LabeledRows
    report: dict[str, Any]
    predicted: list[str]
    report_dir: Path
    record: dict[str, Any]
    freeze: str
    card: Path | None
    training_run: str | None
    run: dict[str, Any]
    store: str | None = None  # the training run's store, in the project the folder lies in now


def evaluate(
    model: str | Path,
    split: str | None = "test",
    data: str | Path | None = None,
    dataset: str | Path | None = None,
    data_config: str | Path | None = None,
    label_map: dict[str, str] | None = None,
    output: Path | None = None,
    tracking: TrackingConfig | None = None,
    n_resamples: int = N_RESAMPLES,
    rows: LabeledRows | None = None,
    precision: str = "auto",
) -> EvalResult:
    """Evaluate a saved model on a split, a labeled file, or any data config, and track the run.

    An MLflow URI is downloaded once; its report goes to `evaluations/<uri>/<data>/` in the current
    folder unless `output` says otherwise (a folder's report goes inside the folder)."""
    check_resamples(n_resamples)
    if output is not None:
        _check_report_target(output)
    with local_model(model) as model_dir:
        # Pinned before loading: `train --overwrite` may replace the folder while this runs.
        pinned = model_folder.pin(model_dir) if not is_mlflow_uri(model) and model_dir.is_dir() else None
        classifier = load_classifier(model_dir, precision)
        rows = rows or load_rows(model_dir, split, data, dataset, data_config, label_map)
        if pinned is not None:
            pinned.check()  # every file loaded came from the one folder
        log.info("evaluating %s on %s (%d sentences)", model, rows.name, len(rows.texts))
        if getattr(classifier.backend, "context", False) and not any(getattr(t, "before", "") or
                                                                     getattr(t, "after", "") for t in rows.texts):
            log.warning("%s reads each sentence with its neighbours, and %s gives none: it is read without them; "
                        "a data config whose source names the articles gives them (--data-config)", model, rows.name)
        in_folder = output is None and pinned is not None
        report_dir = output or (
            model_folder.evaluation_dir(model_dir, rows.name) if in_folder else uri_report_dir(str(model), rows.name)
        )
        done = _write_evaluation(model, model_dir, pinned, in_folder, classifier, rows, report_dir, n_resamples)
    tracker = _track_evaluation(done, tracking, str(data or data_config or split), n_resamples)
    return EvalResult(done.report["metrics"], report_dir, tracker.run_id, tracker.error, done.report, done.predicted)


def _write_evaluation(
    model: str | Path, model_dir: Path, pinned: model_folder.PinnedFolder | None, in_folder: bool,
    classifier: Classifier, rows: LabeledRows, report_dir: Path, n_resamples: int,
) -> _Evaluation:
    """Score `rows` and write the report (with provenance) into `report_dir`, whole or not at all; an
    evaluation written into the model folder also rewrites its card."""
    record = provenance.collect(getattr(classifier.backend, "precision", "fp32"))
    _warn_if_other_code(model_dir, record)
    name = model_label(model)
    validation = (model_folder.read_metrics(model_dir) or {}).get("validation")
    rates = confusion_rates(validation["confusion_matrix"]) if validation else None
    run = model_folder.read_run(model_dir)
    training_run = pinned.run_id if pinned is not None else run.get("run_id")
    shown = model_folder.shown_path(model_dir, model_folder.project_of(model_dir)) if pinned is not None else str(model)
    block = {"model": shown, "training_run": training_run, "model_dataset": run.get("dataset_fingerprint"),
             **({"dataset": f"{rows.dataset['path']} ({rows.dataset['fingerprint']})"} if rows.dataset else {}),
             **provenance.summary(record)}
    # Written whole or not at all, and into the folder evaluated or nowhere.
    into = {"check": pinned.check, "lock": model_dir.parent} if in_folder else {}
    try:
        with atomic_folder(report_dir, **into) as tmp:
            report, predicted = evaluate_rows(classifier, rows, tmp, f"{name} on {rows.name}", n_resamples, rates,
                                              block)
            freeze = provenance.pip_freeze()
            provenance.write(tmp, record, freeze)
    except OSError:
        if in_folder:
            pinned.check()  # the folder, and the report begun in it, went away: say so
        raise
    card = _rewrite_card(pinned) if in_folder and (model_dir / model_folder.CARD_FILE).is_file() else None
    store = model_folder.training_store(model_dir) if pinned is not None else None
    return _Evaluation(model, name, rows, report, predicted, report_dir, record, freeze, card, training_run, run,
                       store)


def _track_evaluation(done: _Evaluation, tracking: TrackingConfig | None, source: str, n_resamples: int) -> Tracker:
    """The evaluation's MLflow run: nested under the training run (when this store holds it), in place of
    earlier evaluations of the model on the same data, its metrics linked to the logged model."""
    rows, model = done.rows, str(done.model)
    fingerprint = done.report["provenance"]["data_fingerprint"]
    tags = {"trainer.kind": "evaluate", "trainer.model": model, "trainer.data": rows.name,
            "trainer.data_fingerprint": fingerprint, **provenance.tags(done.record)}
    if done.training_run:
        tags["trainer.training_run_id"] = done.training_run
    safe_name = rows.name.replace(":", "-")
    store = tracking or _training_store(done.store)
    with Tracker(store, f"evaluate-{done.name}-{safe_name}", tags, parent_run_id=done.training_run) as tracker:
        log.info("tracking: the evaluation run goes to %s", tracker.uri)
        replaced = tracker.replace_earlier({"trainer.kind": "evaluate", "trainer.model": model,
                                            "trainer.data_fingerprint": fingerprint})
        if replaced:
            log.info("replaced %d earlier evaluation run(s) of %s on the same data (kept under deleted runs)",
                     replaced, model)
        tracker.log_config({"model": model, "data": rows.name, "n": len(rows.texts), "n_resamples": n_resamples})
        model_id = tracker.logged_model_id(done.training_run)
        dataset = tracker.log_dataset(_rows_frame(rows), name=safe_name, source=source,
                                      fingerprint=fingerprint, context="evaluation", model_id=model_id)
        figures = {**flat_metrics(done.report["metrics"], "eval"), "eval_ece": done.report["calibration"]["ece"],
                   **flat_intervals(done.report["ci"], "eval")}  # each F1's 95% interval, beside the F1
        tracker.log_metrics(figures, model_id=model_id, dataset=dataset)
        tracker.log_report(done.report_dir, "evaluation", (done.record, done.freeze), done.card)
    return tracker


def _rows_frame(rows: LabeledRows) -> Any:
    """The evaluated sentences as a frame for MLflow's dataset input: text, label and metadata."""
    import pandas as pd

    frame = pd.DataFrame({"text": rows.texts, "label": rows.gold})
    for column, values in rows.meta.items():
        frame[column] = [str(v) for v in values]
    return frame


def _training_store(uri: str | None) -> TrackingConfig:
    """Where the evaluation is tracked without a config: $MLFLOW_TRACKING_URI, else the SQLite store of the
    model's training run in the project the folder lies in now (so that it nests under it there; a copied
    folder logs into its new project, never back into the one it came from), else mlflow.db in the current
    folder."""
    import os

    if not os.environ.get("MLFLOW_TRACKING_URI") and uri and uri.startswith("sqlite:///"):
        return TrackingConfig(uri=uri)
    return TrackingConfig()


def _check_report_target(output: Path) -> None:
    """--output replaces an earlier report, never a folder of other files."""
    if output.exists() and not (output / model_folder.REPORT_JSON).is_file() and (
        not output.is_dir() or any(output.iterdir())
    ):
        raise ConfigError(f"--output: expected a new folder or an earlier report's folder, found {output} with other "
                          "files in it; pick a new folder")


def _rewrite_card(pinned: model_folder.PinnedFolder) -> Path:
    """The model card, rewritten to list the new report, if the folder is still the one evaluated."""
    with swap_lock(pinned.path.parent):
        pinned.check()
        return write_card(pinned.path)


def uri_report_dir(uri: str, data_name: str) -> Path:
    """Where an MLflow URI's evaluation report goes: evaluations/<uri>/<data> in the current folder."""
    return Path(model_folder.EVAL_DIR) / uri_label(uri) / data_name.replace(":", "-")


def _warn_if_other_code(model_dir: Path, current: dict[str, Any]) -> None:
    """A warning when the code or locked packages evaluating a model are not those that trained it."""
    trained = provenance.read(model_dir) if model_dir.is_dir() else None
    if trained is None:
        return
    found = provenance.differences(trained, current)
    if found:
        log.warning("%s was trained by other code than evaluates it now: %s; its figures here may differ from "
                    "its training run's", model_dir, "; ".join(found))
