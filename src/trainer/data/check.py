"""`trainer check-data`: problems in a built dataset, found before training rather than after."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from trainer.data.build import SPLITS, BuiltDataset, dedup_key
from trainer.labels import LABELS


@dataclass(frozen=True)
class Problem:
    severity: str  # "error": training or evaluation would mislead; "warning": worth a look
    message: str


def check_dataset(built: BuiltDataset, min_examples_per_label: int) -> list[Problem]:
    """Labels missing from a split, too few examples of a label, duplicates across splits, empty texts."""
    problems: list[Problem] = []
    seen: dict[str, str] = {}
    for name in SPLITS:
        split = built.dataset[name]
        counts = Counter(LABELS[i] for i in split["label"])
        for label in LABELS:
            if counts[label] == 0:
                problems.append(Problem("error", f"{name}: no '{label}' examples; its F1 cannot be measured or learned"))
            elif counts[label] < min_examples_per_label:
                problems.append(
                    Problem(
                        "warning",
                        f"{name}: only {counts[label]} '{label}' examples (fewer than {min_examples_per_label}); "
                        "its figures will be noisy",
                    )
                )
        empty = sum(1 for text in split["text"] if not text.strip())
        if empty:
            problems.append(Problem("error", f"{name}: {empty} empty texts"))
        crossing = Counter()
        for text in split["text"]:
            key = dedup_key(text)
            if key in seen and seen[key] != name:
                crossing[seen[key]] += 1
            seen.setdefault(key, name)
        for other, n in crossing.items():
            problems.append(Problem("error", f"{name}: {n} sentences duplicate sentences of {other}"))
    card = built.card
    if card.get("unlabeled_sentences"):
        problems.append(
            Problem("warning", f"{len(card['unlabeled_sentences'])} sentences had no gold label and were left out")
        )
    if card.get("unused_labels"):
        problems.append(Problem("warning", f"{len(card['unused_labels'])} gold labels matched no sentence"))
    return problems
