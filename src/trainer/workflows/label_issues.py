"""Label errors in a built dataset: `trainer check-data --label-issues`.

Every sentence gets out-of-fold probabilities from grouped cross-validation (no article is in
the fold that scores it; any backend, TF-IDF by default for speed), and cleanlab's
`find_label_issues` ranks the labels those probabilities say are probably wrong. The result is a
ranked CSV, Label Studio tasks for review (the current label as the prediction to confirm or
change), and a count of suspected issues per source in the dataset card.

`inject_flips` is the finder's own check: flip a known share of labels, look for them, and report
precision and recall at k.
"""

from __future__ import annotations

import csv
import json
import logging
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from trainer.infra.atomic import atomic_file
from trainer.infra.progress import bar
from trainer.config import DEFAULT_SEED, SklearnModel, TrainingConfig
from trainer.data.build import CARD_JSON, CARD_MD, SPLITS, BuiltDataset, card_markdown, split_texts
from trainer.errors import ConfigError, DataError
from trainer.labels import LABEL2ID, LABELS

log = logging.getLogger(__name__)

ISSUES_CSV = "label-issues.csv"
ISSUES_TASKS = "label-issues-tasks.json"
DEFAULT_FOLDS = 5


@dataclass(frozen=True)
class Sentences:
    """All sentences of a dataset, whatever their split."""

    texts: list[str]
    labels: list[str]
    groups: list[str]
    sources: list[str]
    splits: list[str]
    articles: list[str]


def all_sentences(built: BuiltDataset) -> Sentences:
    texts, labels, groups, sources, splits, articles = [], [], [], [], [], []
    for name in SPLITS:
        part = built.dataset[name]
        names = part.features["label"].names
        texts += split_texts(part)  # with their neighbours, for a model that reads context
        labels += [names[i] for i in part["label"]]
        groups += [f"{s}/{a}" for s, a in zip(part["source"], part["article"])]
        sources += list(part["source"])
        splits += [name] * len(part)
        articles += list(part["article"])
    return Sentences(texts, labels, groups, sources, splits, articles)


def out_of_fold_probabilities(
    sentences: Sentences, model: Any = None, training: TrainingConfig | None = None, folds: int = DEFAULT_FOLDS,
    seed: int = DEFAULT_SEED,
) -> np.ndarray:
    """Each sentence's probabilities from a model trained on the folds without its article."""
    from sklearn.model_selection import StratifiedGroupKFold

    from trainer.registry import BACKENDS

    model, training = model or SklearnModel(), training or TrainingConfig(seed=seed)
    if len(set(sentences.groups)) < folds:
        raise DataError(f"--folds {folds}: expected at least {folds} articles, found {len(set(sentences.groups))}")
    y = np.array([LABEL2ID[label] for label in sentences.labels])
    out = np.zeros((len(y), len(LABELS)))
    splitter = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    texts = np.array(sentences.texts, dtype=object)
    # Every sentence is scored once, by the fold that holds it out: done, total, rate and time left in sentences.
    progress = bar(total=len(y), desc=f"label issues, {folds} folds", unit="sentence")
    for fold, (fit, held) in enumerate(splitter.split(np.zeros(len(y)), y, sentences.groups), start=1):
        backend = BACKENDS.get(model.backend).create(model, training)
        backend.fit(list(texts[fit]), [sentences.labels[i] for i in fit])
        out[held] = backend.predict_proba(list(texts[held]))
        progress.update(len(held))
        log.info("fold %d/%d: %d sentences scored", fold, folds, len(held))
    progress.close()
    return out


def find_issues(labels: list[str], probabilities: np.ndarray) -> np.ndarray:
    """Indices of the probable label errors, the most likely first (cleanlab, ranked by self-confidence)."""
    from cleanlab.filter import find_label_issues

    y = np.array([LABEL2ID[label] for label in labels])
    # n_jobs=1: cleanlab's default forks a process pool, which can deadlock in a process that already runs
    # threads (torch, tqdm); one process is fast enough here (a few thousand sentences in well under a second).
    return np.asarray(find_label_issues(y, probabilities, return_indices_ranked_by="self_confidence", n_jobs=1),
                      dtype=int)


def label_issues(
    built: BuiltDataset, output: Path, model: Any = None, folds: int = DEFAULT_FOLDS, seed: int = DEFAULT_SEED,
) -> list[dict[str, Any]]:
    """Find probable label errors in `built`, write the ranked CSV and review tasks into `output`, and
    count them per source in the dataset card. Returns the ranked rows."""
    from trainer.infra.atomic import atomic_folder, check_replaceable

    if output.resolve().is_relative_to(built.path.resolve()):  # a rebuild replaces that folder whole
        raise ConfigError(f"--issues-output: expected a folder outside the dataset {built.path}, found {output} "
                          "inside it, which its next build would delete; choose another folder")
    check_replaceable(output, (ISSUES_CSV, ISSUES_TASKS), "--issues-output")
    sentences = all_sentences(built)
    probabilities = out_of_fold_probabilities(sentences, model, folds=folds, seed=seed)
    ranked = find_issues(sentences.labels, probabilities)
    rows = [
        {"rank": rank, "text": sentences.texts[i], "label": sentences.labels[i],
         "suggested": LABELS[int(probabilities[i].argmax())],
         "label_probability": round(float(probabilities[i][LABEL2ID[sentences.labels[i]]]), 4),
         "source": sentences.sources[i], "article": sentences.articles[i], "split": sentences.splits[i]}
        for rank, i in enumerate(ranked, start=1)
    ]
    with atomic_folder(output) as tmp:
        with (tmp / ISSUES_CSV).open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]) if rows else ["rank", "text", "label"])
            writer.writeheader()
            writer.writerows(rows)
        tasks = [{"data": {"text": r["text"], "paragraph": "", "meta": {k: r[k] for k in ("article", "source", "split",
                                                                                          "rank", "suggested")}},
                  "predictions": [{"model_version": "current-label", "score": r["label_probability"], "result": [
                      {"from_name": "label", "to_name": "text", "type": "choices", "value": {"choices": [r["label"]]}}]}]}
                 for r in rows]
        (tmp / ISSUES_TASKS).write_text(json.dumps(tasks, indent=2, ensure_ascii=False), encoding="utf-8")
    _count_in_card(built, Counter(sentences.sources[i] for i in ranked), len(sentences.texts))
    return rows


def _count_in_card(built: BuiltDataset, per_source: Counter[str], total: int) -> None:
    """Suspected label issues per source into the dataset card (JSON and Markdown), each file replaced whole."""
    card = {**built.card, "label_issues": {"per_source": dict(per_source), "sentences": total,
                                           "method": "cleanlab find_label_issues on out-of-fold probabilities"}}
    for name, text in ((CARD_JSON, json.dumps(card, indent=2, ensure_ascii=False)), (CARD_MD, card_markdown(card))):
        atomic_file(built.path / name, lambda tmp, text=text: tmp.write_text(text, encoding="utf-8"))
    built.card.update(card)


def inject_flips(labels: list[str], rate: float, seed: int = DEFAULT_SEED) -> tuple[list[str], np.ndarray]:
    """A copy of `labels` with `rate` of them changed to another label at random; and which were changed."""
    rng = np.random.default_rng(seed)
    flipped = np.sort(rng.choice(len(labels), size=round(rate * len(labels)), replace=False))
    out = list(labels)
    for i in flipped:
        out[i] = str(rng.choice([label for label in LABELS if label != labels[i]]))
    return out, flipped


def precision_recall_at(found: np.ndarray, truth: np.ndarray, ks: list[int]) -> dict[int, dict[str, float]]:
    """Precision and recall of the first k found indices against the known flips, for each k."""
    truth_set = set(truth.tolist())
    return {k: {"precision": len(set(found[:k].tolist()) & truth_set) / max(min(k, len(found)), 1),
                "recall": len(set(found[:k].tolist()) & truth_set) / max(len(truth_set), 1)} for k in ks}


def flip_check(
    built: BuiltDataset, rate: float = 0.05, model: Any = None, folds: int = DEFAULT_FOLDS, seed: int = DEFAULT_SEED,
) -> dict[str, Any]:
    """Flip `rate` of the labels, run the finder, and report how many flips it finds: P/R at k."""
    sentences = all_sentences(built)
    noisy, flipped = inject_flips(sentences.labels, rate, seed)
    probabilities = out_of_fold_probabilities(
        Sentences(sentences.texts, noisy, sentences.groups, sentences.sources, sentences.splits, sentences.articles),
        model, folds=folds, seed=seed)
    found = find_issues(noisy, probabilities)
    ks = sorted({k for k in (len(flipped) // 2, len(flipped), 2 * len(flipped)) if 0 < k < len(found)} | {len(found)})
    return {"sentences": len(noisy), "flipped": len(flipped), "found": len(found),
            "at_k": precision_recall_at(found, flipped, ks)}
