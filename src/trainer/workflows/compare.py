"""`trainer compare`: several models on the same sentences, one table, paired bootstrap tests.

>>> table = compare(["models/tfidf-bundled", "models/minilm-bundled"], data="dev.jsonl")  # doctest: +SKIP
>>> print(to_markdown(table))  # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trainer.errors import ConfigError
from trainer.workflows.evaluate import evaluate, load_rows
from trainer.labels import LABELS
from trainer.metrics import N_RESAMPLES, check_resamples, paired_bootstrap
from trainer.outputs.model_folder import read_meta
from trainer.workflows.predict import is_mlflow_uri, local_model
from trainer.outputs.report import format_ci


@dataclass
class CompareTable:
    """One row per model: figures with intervals, and the paired test against the reference."""

    data: str
    n: int
    ci_unit: str
    reference: str
    rows: list[dict[str, Any]]
    n_resamples: int = N_RESAMPLES
    support: dict[str, int] | None = None  # gold sentences per label
    n_groups: int | None = None  # articles, when the intervals resample them


def compare(
    models: list[str],
    reference: str | None = None,
    split: str | None = "test",
    data: str | Path | None = None,
    dataset: str | Path | None = None,
    data_config: str | Path | None = None,
    label_map: dict[str, str] | None = None,
    n_resamples: int = N_RESAMPLES,
) -> CompareTable:
    """Evaluate every model on the same rows and test each against `reference` (default: the first)."""
    check_resamples(n_resamples)
    reference = reference or models[0]
    if reference not in models:
        raise ConfigError(f"--reference: expected one of the --models {models}, found {reference!r}")
    for model in models:  # a wrong path or URI is found before any evaluation writes a report into a folder
        if is_mlflow_uri(model):
            from trainer.outputs.tracking import check_model_uri

            check_model_uri(model)
        else:
            read_meta(Path(model))
    with local_model(models[0]) as first:  # a split is read from the first model's training config
        rows = load_rows(first, split, data, dataset, data_config, label_map)
    results = {model: evaluate(model, rows=rows, n_resamples=n_resamples) for model in models}
    base = results[reference].predicted
    table_rows = []
    for model, result in results.items():
        row: dict[str, Any] = {
            "model": model,
            "macro_f1": result.metrics["macro_f1"],
            "macro_f1_ci": result.report["ci"]["macro_f1"],
            "f1": {label: result.metrics["per_label"][label]["f1"] for label in LABELS},
            "f1_ci": {label: result.report["ci"][f"{label}_f1"] for label in LABELS},
            "ece": result.report["calibration"]["ece"],
            "run_id": result.run_id,
        }
        if model != reference:
            row["vs_reference"] = paired_bootstrap(rows.gold, base, result.predicted, rows.groups, n_resamples)
        table_rows.append(row)
    unit = "articles" if rows.groups is not None else "sentences"
    support = {label: sum(g == label for g in rows.gold) for label in LABELS}
    n_groups = len(set(rows.groups)) if rows.groups is not None else None
    return CompareTable(rows.name, len(rows.texts), unit, reference, table_rows, n_resamples, support, n_groups)


def _p(value: float, n_resamples: int) -> str:
    """A bootstrap p-value of 0 only says 'below 1/n_resamples'."""
    return f"<{1 / n_resamples:.3g}" if value == 0 else f"{value:.3f}"


def _cells(table: CompareTable) -> tuple[list[str], list[list[str]]]:
    support = table.support or {}
    header = ["model", f"macro-F1 [95% CI] (n={table.n})",
              *[f"{label} F1 [95% CI]" + (f" (n={support[label]})" if label in support else "") for label in LABELS],
              "ECE", f"Δ vs {Path(table.reference).name} [95% CI]", "p"]
    body = []
    for row in table.rows:
        versus = row.get("vs_reference")
        body.append(
            [
                Path(row["model"]).name or row["model"],
                format_ci(row["macro_f1"], row["macro_f1_ci"]),
                *[format_ci(row["f1"][label], row.get("f1_ci", {}).get(label)) for label in LABELS],
                f"{row['ece']:.3f}",
                f"{versus['delta_macro_f1']:+.3f} [{versus['ci_low']:+.3f}, {versus['ci_high']:+.3f}]" if versus else "reference",
                _p(versus["p_value"], table.n_resamples) if versus else "",
            ]
        )
    return header, body


def to_markdown(table: CompareTable) -> str:
    """The comparison as a Markdown table, with a line saying what the intervals are."""
    header, body = _cells(table)
    counts = ", ".join(f"{label} {n}" for label, n in (table.support or {}).items())
    articles = f" from {table.n_groups} articles" if table.n_groups else ""
    lines = [
        f"Data: {table.data} ({table.n} sentences{articles}; gold {counts}). Intervals and p-values: paired "
        f"bootstrap over {table.ci_unit}, {table.n_resamples} resamples.",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
        *["| " + " | ".join(row) + " |" for row in body],
    ]
    return "\n".join(lines) + "\n"


def to_text(table: CompareTable) -> str:
    """The comparison as an aligned plain-text table."""
    header, body = _cells(table)
    widths = [max(len(r[i]) for r in [header, *body]) for i in range(len(header))]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    lines = [f"{table.data}: {table.n} sentences; paired bootstrap over {table.ci_unit}", fmt.format(*header)]
    lines += [fmt.format(*row) for row in body]
    return "\n".join(lines)
