"""The training loop as a stream of events: the loop trains, the caller decides.

Modelled on spaCy's `train_while_improving`: iterating a `TrainingLoop` runs optimiser steps and
yields a `StepDone` after each and an `EpochDone` (with validation figures) after each epoch. The
caller decides what to do with them: `train()` saves checkpoints, logs to MLflow and stops early;
a sweep prunes. Stopping is just leaving the `for` loop; `finish()` then puts the best epoch's
weights back.

The loop trains any `Trainable` (`models/base.py`; the transformer backend is one) through that
public contract only: it tokenises with `encode`, batches with `collate`, runs `forward`, and owns
every step itself. Creating a loop stores its inputs; `prepare()` (run by `training_loop()`, else
on first use) seeds, tokenises the texts once and builds the optimiser.

At every event `state_dict()` is a resume point: a `TrainingLoop` given that state through
`load_state_dict()` continues exactly as the uninterrupted loop would (same batches, same random
draws), so `--resume` gives the same model.

Inside: class-weighted cross-entropy for the rare label, fused AdamW with warmup and linear decay,
length-grouped batches, bf16/fp16 autocast where the hardware runs it, gradient clipping, and under
torchrun every rank training its shard of the same global batches.
"""

from __future__ import annotations

import copy
import logging
import random
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import numpy as np
import torch

from trainer.infra import distributed, threads
from trainer.labels import LABEL2ID, LABELS
from trainer.metrics import macro_f1
from trainer.infra.progress import bar
from trainer.models.base import Trainable

log = logging.getLogger(__name__)

# Gradients are clipped to this global norm before every step.
GRAD_CLIP_NORM = 1.0
# The free cores are re-checked (infra/threads.py) every this many optimiser steps.
THREAD_CHECK_STEPS = 4


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


@dataclass(frozen=True)
class StepDone:
    """One optimiser step was taken."""

    epoch: int
    step: int


@dataclass(frozen=True)
class EpochDone:
    """An epoch ended; `metrics` holds its training loss and, with validation data, its macro-F1."""

    epoch: int
    step: int
    metrics: dict[str, float]
    is_best: bool  # the best score so far (validation macro-F1, else the negative training loss)
    stale: int  # epochs in a row without a better score
    last: bool  # no epoch follows: the epoch budget or `max_steps` is spent


Event = StepDone | EpochDone

T = TypeVar("T", bound=Trainable)


class TrainingLoop(Generic[T]):
    """Iterate it to train `trainable` on `texts`; the events say where it is."""

    # Built by prepare(): the random generator of batch draws, the tokenised texts and their labels, the
    # loss, optimiser, loss scaler and learning-rate schedule, and the number of steps to take.
    rng: np.random.Generator
    ids: list[list[int]]
    lengths: np.ndarray
    y: torch.Tensor
    loss_fn: torch.nn.CrossEntropyLoss
    soft: SoftTargets | None  # with `targets`: the loss over distributions instead of `loss_fn`
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    scheduler: Any
    total_steps: int

    def __init__(
        self,
        trainable: T,
        texts: Sequence[str],
        labels: Sequence[str],
        validation: tuple[Sequence[str], Sequence[str]] | None = None,
        targets: np.ndarray | None = None,
    ):
        """`targets` (optional, one row per text in LABELS order): a teacher's probabilities to learn instead of
        the label, NaN rows for gold sentences (distillation)."""
        self.trainable = trainable
        self.texts, self.labels, self.validation, self.targets = texts, labels, validation, targets
        self.cfg = trainable.training
        self.prepared = False
        # Where the loop is: the next epoch and batch, and that epoch's batches once drawn.
        self.epoch, self.batch_index, self.batches = 1, 0, None
        self.step, self.loss_sum, self.seen = 0, 0.0, 0
        self.best_score, self.best_state, self.best_epoch, self.stale = -float("inf"), None, 0, 0

    def prepare(self) -> TrainingLoop[T]:
        """Seed, tokenise the texts once, and build the loss, optimiser and schedule. Runs once; iterating,
        `state_dict()` and `load_state_dict()` run it first if it has not run."""
        if self.prepared:
            return self
        from transformers import get_linear_schedule_with_warmup

        trainable, cfg = self.trainable, self.cfg
        seed_everything(cfg.seed)
        self.rng = np.random.default_rng(cfg.seed)
        self.ids = trainable.encode(self.texts)
        self.lengths = np.array([len(x) for x in self.ids])
        y = torch.tensor([LABEL2ID[label] for label in self.labels], dtype=torch.long)
        self.y = y.to(trainable.device)

        weight = None
        if cfg.class_weighting:
            # From the gold sentences only: a teacher's sentences follow the corpora's own label shares, and
            # counting them would weigh a rare gold label by how rare it is in the news rather than in the labels.
            gold = y.numpy() if self.targets is None else y.numpy()[np.isnan(self.targets).any(axis=1)]
            counts = np.bincount(gold, minlength=len(LABELS)).astype(float)
            weight = torch.tensor(len(gold) / (len(LABELS) * np.maximum(counts, 1)), dtype=torch.float32)
            log.info("class weights %s", {label: round(float(w), 2) for label, w in zip(LABELS, weight)})
        self.loss_fn = torch.nn.CrossEntropyLoss(weight=weight.to(trainable.device) if weight is not None else None)
        self.soft = None if self.targets is None else soft_targets(
            y, self.targets, weight, cfg.distill_weight, trainable.device, cfg.distill_class_weights,
            cfg.distill_temperature)

        steps_per_epoch = -(-len(self.ids) // cfg.batch_size)
        self.total_steps = steps_per_epoch * cfg.epochs
        if cfg.max_steps is not None:
            self.total_steps = min(self.total_steps, cfg.max_steps)
        self.optimizer = _optimizer(trainable.model, cfg.learning_rate, cfg.weight_decay)
        # fp16 gradients underflow without loss scaling; for bf16 and fp32 the scaler does nothing.
        self.scaler = torch.amp.GradScaler(trainable.device.type, enabled=trainable.precision == "fp16")
        self.scheduler = get_linear_schedule_with_warmup(
            self.optimizer, int(cfg.warmup_ratio * self.total_steps), self.total_steps
        )
        self.prepared = True
        return self

    # ------------------------------------------------------------ resume

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue from here: weights, optimiser, schedule, random generators, position."""
        self.prepare()
        return {
            "weights": self.trainable.model.state_dict(),
            "best": self.best_state,
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
            "loop": {
                "epoch": self.epoch,
                "batch_index": self.batch_index,
                "step": self.step,
                "loss_sum": self.loss_sum + float(self._epoch_loss),
                "seen": self.seen,
                "best_f1": self.best_score,
                "stale": self.stale,
                "best_epoch": self.best_epoch,
                "batches": None if self.batches is None else [b.tolist() for b in self.batches],
                "numpy_rng": self.rng.bit_generator.state,
                "scaler": self.scaler.state_dict() if self.scaler.is_enabled() else None,
            },
        }

    def load_state_dict(self, saved: dict[str, Any]) -> None:
        """Continue from a `state_dict()` (a checkpoint)."""
        self.prepare()
        self.trainable.model.load_state_dict(saved["weights"])
        self.optimizer.load_state_dict(saved["optimizer"])
        self.scheduler.load_state_dict(saved["scheduler"])
        loop = saved["loop"]
        if loop.get("scaler"):
            self.scaler.load_state_dict(loop["scaler"])
        torch.set_rng_state(saved["torch_rng"])
        if saved.get("cuda_rng") is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(saved["cuda_rng"])
        self.rng.bit_generator.state = loop["numpy_rng"]
        self.best_state, self.best_score, self.stale = saved["best"], loop["best_f1"], loop["stale"]
        self.step, self.best_epoch, self.epoch = loop["step"], loop["best_epoch"], loop["epoch"]
        self.batches = None if loop["batches"] is None else [np.array(b, dtype=int) for b in loop["batches"]]
        self.batch_index, self.loss_sum, self.seen = loop["batch_index"], loop["loss_sum"], loop["seen"]
        log.info("resuming at epoch %d, batch %d (step %d)", self.epoch, self.batch_index, self.step)

    # ------------------------------------------------------------ the loop

    _epoch_loss: Any = 0.0  # the running epoch loss, kept on the device (no wait for the GPU each step)

    def __iter__(self) -> Iterator[Event]:
        self.prepare()
        trainable, cfg = self.trainable, self.cfg
        # Under torchrun every rank draws the same global batches (same seed) and takes its shard;
        # DDP averages the gradients, so a step matches one process with the same global batch.
        trained = distributed.wrap(trainable.model)
        log.info("training on %s in %s: %d examples, %d steps", trainable.device, trainable.precision, len(self.ids),
                 self.total_steps)
        while self.epoch <= cfg.epochs:
            epoch = self.epoch
            trainable.model.train()
            started = time.perf_counter()
            if self.batches is None:
                self.batches, self.batch_index, self.loss_sum, self.seen = self._draw_batches(), 0, 0.0, 0
            if distributed.is_distributed():  # every rank needs a non-empty shard of every step
                self.batches = [b for b in self.batches if len(b) >= distributed.world_size()]
            batches = self.batches
            self._epoch_loss = torch.zeros((), device=trainable.device)
            progress = bar(range(self.batch_index, len(batches)), desc=f"epoch {epoch}/{cfg.epochs}", unit="batch",
                            leave=False, disable=not distributed.is_main())
            for index in progress:
                if self.step % THREAD_CHECK_STEPS == 0:
                    threads.check()  # other work may have taken cores, or given them back
                self._train_step(trained, batches[index])
                self.batch_index = index + 1
                if self.step >= self.total_steps:
                    break
                yield StepDone(epoch, self.step)
            progress.close()
            yield self._end_epoch(epoch, time.perf_counter() - started)
            if self.step >= self.total_steps:
                return

    def _draw_batches(self) -> list[np.ndarray]:
        return training_batches(self.lengths, self.cfg.batch_size, self.cfg.length_group_batches, self.rng)

    def _train_step(self, trained: torch.nn.Module, batch: np.ndarray) -> None:
        trainable = self.trainable
        batch = distributed.shard(batch)
        logits = trainable.forward(trainable.collate([self.ids[i] for i in batch]), trained)
        rows = torch.from_numpy(batch).to(trainable.device)
        if self.soft is None:
            loss = self.loss_fn(logits.float(), self.y[rows])
        else:
            loss = self.soft.loss(logits.float(), rows)
        self.scaler.scale(loss).backward()
        self.scaler.unscale_(self.optimizer)  # clip the true gradients
        torch.nn.utils.clip_grad_norm_(trainable.model.parameters(), GRAD_CLIP_NORM)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        self._epoch_loss += loss.detach() * len(batch)
        self.seen += len(batch)
        self.step += 1

    def _end_epoch(self, epoch: int, elapsed: float) -> EpochDone:
        self.loss_sum += float(self._epoch_loss)
        self._epoch_loss = 0.0
        epoch_loss, epoch_seen = distributed.sum_across_ranks(self.loss_sum, self.seen)
        metrics = {"train_loss": epoch_loss / max(epoch_seen, 1), "train_examples_per_second": self.seen / elapsed}
        if self.validation is not None and len(self.validation[0]):
            predicted = self.trainable.predict_labels(self.validation[0])
            metrics["val_macro_f1"] = macro_f1(list(self.validation[1]), predicted)
            metrics["val_accuracy"] = float(np.mean([p == g for p, g in zip(predicted, self.validation[1])]))
        log.info("epoch %d/%d: train loss %.4f, %.1f examples/s%s", epoch, self.cfg.epochs, metrics["train_loss"],
                 metrics["train_examples_per_second"],
                 f"; validation macro-F1 {metrics['val_macro_f1']:.4f}, accuracy {metrics['val_accuracy']:.4f}"
                 if "val_macro_f1" in metrics else "")
        score = metrics.get("val_macro_f1", -metrics["train_loss"])
        is_best = score > self.best_score
        if is_best:
            self.best_score, self.stale, self.best_epoch = score, 0, epoch
            self.best_state = copy.deepcopy({k: v.detach().cpu() for k, v in self.trainable.model.state_dict().items()})
        else:
            self.stale += 1
        last = epoch >= self.cfg.epochs or self.step >= self.total_steps
        # The resume point is now the start of the next epoch, its batches drawn afresh.
        self.epoch, self.batch_index, self.batches = epoch + 1, 0, None
        if not last:
            self.loss_sum, self.seen = 0.0, 0
        return EpochDone(epoch, self.step, metrics, is_best, self.stale, last)

    def finish(self) -> T:
        """Put the best epoch's weights (`best_epoch`) back and switch to inference; returns the trained model."""
        if self.best_state is not None:
            self.trainable.model.load_state_dict(self.best_state)
        self.trainable.model.eval()
        return self.trainable


@dataclass(frozen=True)
class SoftTargets:
    """Per-example target distributions and loss weights: one-hot and the label's class weight for a gold
    sentence, the teacher's probabilities and `distill_weight` times their expected class weight for a
    teacher's. Its loss is the weighted mean cross-entropy, which for gold-only data equals `CrossEntropyLoss`
    with class weights."""

    distributions: torch.Tensor
    weights: torch.Tensor

    def loss(self, logits: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        weights = self.weights[rows]
        per_example = -(self.distributions[rows] * torch.log_softmax(logits, dim=1)).sum(dim=1)
        return (weights * per_example).sum() / weights.sum().clamp(min=1e-12)


def soft_targets(y: torch.Tensor, targets: np.ndarray, class_weight: torch.Tensor | None, distill_weight: float,
                 device: torch.device, teacher_class_weights: bool = True,
                 temperature: float = 1.0) -> SoftTargets:
    """`SoftTargets` from the hard labels `y` and `targets` (the teacher's rows, NaN for gold sentences).
    A teacher's row weighs `distill_weight` times its expected class weight, or `distill_weight` alone when
    `teacher_class_weights` is false. A `temperature` T renormalises the teacher's p to p^(1/T): the softmax of
    its log-probabilities divided by T, as distillation softens logits."""
    teacher = torch.from_numpy(np.asarray(targets, dtype=np.float32))
    is_teacher = ~torch.isnan(teacher).any(dim=1)
    distributions = torch.nn.functional.one_hot(y, len(LABELS)).float()
    probabilities = teacher[is_teacher].clamp(min=1e-12)
    distributions[is_teacher] = torch.softmax(probabilities.log() / temperature, dim=1)
    per_label = class_weight if class_weight is not None else torch.ones(len(LABELS))
    weights = (distributions * per_label).sum(dim=1)
    if not teacher_class_weights:
        weights[is_teacher] = 1.0
    weights[is_teacher] *= distill_weight
    return SoftTargets(distributions.to(device), weights.to(device))


def training_batches(
    lengths: np.ndarray, batch_size: int, group_batches: int, rng: np.random.Generator
) -> list[np.ndarray]:
    """Bucketed random batches of indices into `lengths`, as `transformers.Trainer`'s `group_by_length`:
    shuffle, cut into mega-batches of `group_batches` batches, sort each by length, cut it into batches,
    shuffle the batches. The default (`length_group_batches`: 50 batches of 16) sorts the bundled train
    split in two halves. Mega-batches of a quarter of the split cost less validation F1 with Trainer's
    hyperparameters (benchmarks/README.md), but 0.072 of dev-set macro-F1 with the project's own (one
    seed), so they are not the default."""
    order = rng.permutation(len(lengths))
    group = batch_size * group_batches  # sorted together: little padding
    batches: list[np.ndarray] = []
    for start in range(0, len(order), group):
        chunk = order[start : start + group]
        chunk = chunk[np.argsort(lengths[chunk], kind="stable")]
        batches.extend(chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size))
    rng.shuffle(batches)
    return batches


def _optimizer(model: torch.nn.Module, learning_rate: float, weight_decay: float) -> torch.optim.Optimizer:
    decay, no_decay = [], []
    for _, param in model.named_parameters():
        (no_decay if param.ndim < 2 else decay).append(param)
    return torch.optim.AdamW(
        [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=learning_rate,
        fused=True,  # one kernel over all parameters: 6x faster than the default step on the CPU too
    )
