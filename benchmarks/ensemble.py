"""An ensemble of trained models on labeled sentences: the mean of their probabilities, against each member
and a reference model, with 95% bootstrap intervals over articles and paired differences.

    python benchmarks/ensemble.py --models models/mpnet-news-outlets models/mpnet-news-outlets-s29 \\
        --reference models/minilm-bundled --data ../shared/devset/real-news-dev.jsonl

Answers whether a seed ensemble of the teacher is worth its cost (it predicts once per member, so it runs at
1/k of one member's speed): each member's macro-F1, the ensemble's, the ensemble against its best member and
against the reference, each with its paired interval. Prints the table and writes it as JSON under
benchmarks/results/ (--name).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from common import machine, save

from trainer.labels import LABELS
from trainer.metrics import bootstrap_ci, macro_f1, paired_bootstrap
from trainer.workflows.evaluate import rows_from_file
from trainer.workflows.predict import load_classifier


def _probabilities(model: Path, texts: list[str]) -> np.ndarray:
    """(sentences, labels) probabilities of one model, in `LABELS` order."""
    return np.array([[p.probabilities[label] for label in LABELS] for p in load_classifier(model).predict(texts)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", type=Path, required=True, help="the ensemble's members")
    parser.add_argument("--reference", type=Path, help="also compare against this model (today's default)")
    parser.add_argument("--data", type=Path, required=True, help="labeled JSONL/CSV (text, label, article)")
    parser.add_argument("--name", default="ensemble", help="result file name under benchmarks/results/")
    args = parser.parse_args()

    rows = rows_from_file(args.data, None)
    print(f"{args.data}: {len(rows.texts)} sentences; {machine()['cpu']}")
    probabilities = {str(m): _probabilities(m, rows.texts) for m in args.models}
    if args.reference:
        probabilities[str(args.reference)] = _probabilities(args.reference, rows.texts)
    members = [str(m) for m in args.models]
    predicted = {name: [LABELS[i] for i in p.argmax(axis=1)] for name, p in probabilities.items()}
    ensemble = np.mean([probabilities[m] for m in members], axis=0)
    predicted["ensemble"] = [LABELS[i] for i in ensemble.argmax(axis=1)]

    best = max(members, key=lambda m: macro_f1(rows.gold, predicted[m]))
    result: dict[str, dict[str, float | list[float]]] = {}
    print(f"{'model':40} {'macro-F1 [95% CI]':24} {'vs best member':28} vs reference")
    for name, labels in predicted.items():
        ci = bootstrap_ci(rows.gold, labels, rows.groups)["macro_f1"]
        row: dict[str, float | list[float]] = {"macro_f1": macro_f1(rows.gold, labels), "ci": list(ci)}
        cells = [f"{row['macro_f1']:.3f} [{ci[0]:.3f}, {ci[1]:.3f}]", "", ""]
        for column, other in ((1, best), (2, str(args.reference) if args.reference else None)):
            if other and other != name:
                d = paired_bootstrap(rows.gold, predicted[other], labels, rows.groups)
                row[f"vs_{column}"] = [d["delta_macro_f1"], d["ci_low"], d["ci_high"], d["p_value"]]
                cells[column] = f"{d['delta_macro_f1']:+.3f} [{d['ci_low']:+.3f}, {d['ci_high']:+.3f}] p {d['p_value']:.3f}"
        result[name] = row
        print(f"{name:40} {cells[0]:24} {cells[1]:28} {cells[2]}")
    print(f"best member: {best}")
    save(args.name, {"data": str(args.data), "n": len(rows.texts), "best": best, "rows": result})


if __name__ == "__main__":
    main()
