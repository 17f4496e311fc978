"""The command line's option types and shared options (`cli.py` builds each command from them)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from trainer.config import SPLITS
from trainer.errors import ConfigError
from trainer.labels import LABELS

# A sweep's budget past this is a slip of the keyboard (each trial trains a model): refused, not run for weeks.
MAX_TRIALS = 10_000
# numpy's and scikit-learn's seeds run from 0 to 2**32 - 1; another is refused here, not deep in a sampler.
MAX_SEED = 2**32 - 1


def whole(minimum: int, maximum: int | None = None) -> Any:
    """An argparse type: a whole number of at least `minimum` (and at most `maximum`)."""

    def parse(raw: str) -> int:
        try:
            value = int(raw)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, found {raw!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected at least {minimum}, found {value}")
        if maximum is not None and value > maximum:
            raise argparse.ArgumentTypeError(f"expected at most {maximum:,}, found {value:,}")
        return value

    return parse


def fraction(low: float, high: float, low_open: bool = False) -> Any:
    """An argparse type: a number in [low, high] (or (low, high] with `low_open`)."""

    def parse(raw: str) -> float:
        try:
            value = float(raw)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, found {raw!r}") from None
        if not (low < value if low_open else low <= value) or not value <= high:
            raise argparse.ArgumentTypeError(f"expected a number {'above' if low_open else 'from'} {low:g} "
                                             f"{'and at most' if low_open else 'to'} {high:g}, found {raw}")
        return value

    return parse


def add_overrides(parser: argparse.ArgumentParser, help: str) -> None:
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE", help=help)


def add_config(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("--config", required=True, type=Path, help=f"{what} YAML file")
    add_overrides(parser, "override a config value, e.g. --set training.epochs=2 (repeatable)")


def add_precision(parser: argparse.ArgumentParser) -> None:
    from trainer.workflows.predict import PRECISIONS

    parser.add_argument(
        "--precision",
        choices=PRECISIONS,
        default=PRECISIONS[0],
        help="transformer models: auto = bf16 on a GPU or a CPU with AMX/AVX512-BF16, fp16 on a GPU without "
        "bf16, else fp32; fp32 forces full precision",
    )


def add_eval_data(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--data", type=Path, help="labeled JSONL/CSV with text and label fields")
    group.add_argument("--data-config", type=Path, help="a data config: evaluate on all its sentences, no split")
    parser.add_argument("--split", default="test", choices=SPLITS,
                        help="the split to evaluate: of the model's own dataset, or of --dataset")
    parser.add_argument("--dataset", type=Path, help="a built dataset folder whose --split to use")
    parser.add_argument(
        "--label-map", action="append", default=[], metavar="THEIRS=OURS", help="rename labels in --data (repeatable)"
    )
    from trainer.metrics import N_RESAMPLES

    # checked by metrics.check_resamples (at least MIN_RESAMPLES), for the API and the command line alike
    parser.add_argument("--resamples", type=int, default=N_RESAMPLES, help="bootstrap resamples for the intervals")


def label_map(pairs: list[str]) -> dict[str, str]:
    mapping = {}
    for pair in pairs:
        theirs, sep, ours = pair.partition("=")
        if not sep:
            raise ConfigError(f"--label-map {pair!r}: expected THEIRS=OURS, e.g. --label-map FACT=verified")
        if ours not in LABELS:
            raise ConfigError(f"--label-map {pair!r}: expected OURS to be one of {list(LABELS)}, found {ours!r}")
        mapping[theirs] = ours
    return mapping
