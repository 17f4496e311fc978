"""The one recipe every run that trains follows: built dataset -> texts and labels per split -> a fresh
backend -> fit -> scores. `train`, each cross-validation fold and each sweep trial use it.

>>> run = prepare_run(config)  # doctest: +SKIP
>>> run.fit(tracker)  # doctest: +SKIP
>>> probabilities, metrics = run.score("validation")  # doctest: +SKIP
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from trainer.config import ExperimentConfig
from trainer.data.build import SPLITS, TEACHER_COLUMN, BuiltDataset, build_dataset, split_texts
from trainer.infra import distributed
from trainer.labels import LABELS
from trainer.metrics import compute_metrics
from trainer.models import create_backend
from trainer.models.base import Backend, SteppedBackend
from trainer.models.checkpoint import Checkpointer
from trainer.models.loop import EpochDone, StepDone
from trainer.outputs.tracking import Tracker

log = logging.getLogger(__name__)


def split_texts_labels(split: Any) -> tuple[list[str], list[str]]:
    """One split of a built dataset (a `datasets.Dataset`) as its texts and label names, in order; a text
    carries its neighbours where the dataset has them (`split_texts`), for a model that reads context."""
    names = split.features["label"].names
    return split_texts(split), [names[i] for i in split["label"]]


def teacher_targets(split: Any) -> np.ndarray | None:
    """A split's teacher probabilities (one row per sentence, LABELS order, NaN rows for gold sentences), or
    None when the dataset has no teacher column (no `kind: teacher` source)."""
    if TEACHER_COLUMN not in split.column_names:
        return None
    rows = [row if len(row) else [np.nan] * len(LABELS) for row in split[TEACHER_COLUMN]]
    return np.asarray(rows, dtype=np.float32).reshape(len(rows), len(LABELS))


def pooled_sentences(built: BuiltDataset) -> tuple[list[str], list[str], list[str]]:
    """Every sentence of the built dataset, split after split (`SPLITS` order): texts, labels and
    article groups (`source/article`)."""
    texts: list[str] = []
    labels: list[str] = []
    groups: list[str] = []
    for name in SPLITS:
        part = built.dataset[name]
        split_texts, split_labels = split_texts_labels(part)
        texts += split_texts
        labels += split_labels
        groups += [f"{s}/{a}" for s, a in zip(part["source"], part["article"])]
    return texts, labels, groups


@dataclass
class PreparedRun:
    """A run ready to fit: its config, the built dataset, texts and labels per split, and a fresh backend."""

    config: ExperimentConfig
    built: BuiltDataset
    texts: dict[str, list[str]]
    labels: dict[str, list[str]]
    backend: Backend
    targets: np.ndarray | None = None  # the train split's teacher probabilities (`teacher_targets`), if any

    def split(self, name: str) -> tuple[list[str], list[str]]:
        """The texts and labels of split `name`."""
        return self.texts[name], self.labels[name]

    def fit(
        self,
        tracker: Tracker,
        checkpointer: Checkpointer | None = None,
        on_epoch: Callable[[EpochDone], None] | None = None,
    ) -> Backend:
        """Fit the backend on the train split, validating on the validation split (see `fit`)."""
        texts, labels = self.split("train")
        return fit(self.backend, texts, labels, self.split("validation"), self.config, tracker, checkpointer,
                   on_epoch, self.targets)

    def score(self, name: str) -> tuple[np.ndarray, dict[str, Any]]:
        """The backend's probabilities on split `name`, and the metrics of its most probable labels."""
        texts, labels = self.split(name)
        probabilities = self.backend.predict_proba(texts)
        return probabilities, compute_metrics(labels, [LABELS[i] for i in probabilities.argmax(axis=1)])


def prepare_run(
    config: ExperimentConfig,
    dataset: BuiltDataset | None = None,
    folds: Mapping[str, Sequence[int]] | None = None,
    progress: bool = True,
) -> PreparedRun:
    """The built dataset (`dataset`, else built here), its texts and labels per split, and a fresh
    backend for `config`, created last (a transformer seeds every generator as it is created).

    With `folds` ({split: positions}), the splits are instead those positions of the dataset's
    pooled sentences (`pooled_sentences`): one cross-validation fold.

    >>> run = prepare_run(load_config("configs/default.yaml"))  # doctest: +SKIP
    >>> len(run.texts["train"]), type(run.backend).__name__  # doctest: +SKIP
    """
    built = dataset if dataset is not None else build_dataset(config.data, progress=progress)
    if folds is None:
        splits = {name: split_texts_labels(built.dataset[name]) for name in SPLITS}
    else:
        texts, labels, _ = pooled_sentences(built)
        splits = {name: ([texts[i] for i in positions], [labels[i] for i in positions])
                  for name, positions in folds.items()}
    targets = teacher_targets(built.dataset["train"]) if folds is None else None
    backend = create_backend(config)
    return PreparedRun(config, built, {name: t for name, (t, _) in splits.items()},
                       {name: y for name, (_, y) in splits.items()}, backend, targets)


def fit(
    backend: Backend,
    texts: Sequence[str],
    labels: Sequence[str],
    validation: tuple[Sequence[str], Sequence[str]],
    config: ExperimentConfig,
    tracker: Tracker,
    checkpointer: Checkpointer | None = None,
    on_epoch: Callable[[EpochDone], None] | None = None,
    targets: np.ndarray | None = None,
) -> Backend:
    """Train `backend` (with `targets`, a teacher's probabilities per train text: distillation). One that
    trains in steps runs its loop here, and this function decides:
    per-epoch metrics to MLflow, a checkpoint every `checkpoint_every_steps` steps and at each epoch
    end, early stopping after `early_stopping_patience` epochs without a better score. `on_epoch`
    sees each epoch's event after it is logged (a sweep's pruner raises from it to stop the trial)."""
    if not isinstance(backend, SteppedBackend):
        if targets is not None:
            log.warning("%s learns the teacher's most probable labels, not its probabilities", type(backend).__name__)
        return backend.fit(texts, labels)
    loop = backend.training_loop(texts, labels, validation, targets)
    if checkpointer is not None and checkpointer.exists():
        loop.load_state_dict(checkpointer.load())
    save = checkpointer is not None and distributed.is_main()
    for event in loop:
        if isinstance(event, StepDone):
            if save and event.step % checkpointer.every_steps == 0:
                checkpointer.save(loop.state_dict())
        elif isinstance(event, EpochDone):
            tracker.log_metrics(event.metrics, step=event.epoch)
            if on_epoch is not None:
                on_epoch(event)
            if event.stale >= config.training.early_stopping_patience:
                log.info("early stopping after epoch %d (best epoch %d)", event.epoch, loop.best_epoch)
                break
            if save and not event.last:
                checkpointer.save(loop.state_dict())  # resume at the start of the next epoch
    return loop.finish()
