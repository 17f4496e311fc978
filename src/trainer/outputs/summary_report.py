"""The files of `trainer summarize`: CSV, XLSX, JSON, the plot (PNG, SVG) and an HTML page.

The plot has one panel per label, each with its own scale (an unverified share of 2% is readable
beside attributed shares of 60%), every bar with its 95% interval, and the estimator in the title.
"""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path
from typing import Any

import numpy as np

from trainer.estimators import ESTIMATORS
from trainer.infra.atomic import atomic_folder
from trainer.labels import LABELS
from trainer.outputs.spreadsheet import write_workbook

COLOURS = {"ppi": "#1f77b4", "hand": "#9ecae1", "cc": "#bbbbbb", "acc": "#2ca02c", "pacc": "#2ca02c",
           "emq": "#2ca02c"}
NUMERICAL_ZERO = 1e-9
SHORT = {"ppi": "PPI", "hand": "hand-labeled only", "cc": "classify-and-count", "acc": "ACC (QuaPy)",
         "pacc": "PACC (QuaPy)", "emq": "EMQ (QuaPy)"}


def percent(share: float) -> str:
    """A share as a percentage that never shows 0.0% for a share above zero.

    >>> [percent(x) for x in (0.25, 0.0004, 0.0, 2e-16)]
    ['25.0%', '0.04%', '0%', '0%']
    """
    if share != share:  # nan
        return "n/a"
    if share < NUMERICAL_ZERO:  # a solver's rounding error (2e-16), not a share of any real corpus
        return "0%"
    if share < 0.001:
        return f"{share * 100:.2g}%"
    return f"{share:.1%}"


def estimators(rows: list[dict[str, Any]]) -> list[str]:
    """The estimators present in the rows, in the order of `ESTIMATORS`."""
    return [name for name in ESTIMATORS if rows and f"{name}_share" in rows[0]]


def write_summary(summary: Any, target: Path) -> None:
    """All the summary's files into `target`, whole or not at all."""
    import pandas as pd

    frame = pd.DataFrame(summary.rows)
    frame.insert(0, "primary_estimator", summary.primary)
    record = {"by": summary.by, "model": summary.model, "primary_estimator": summary.primary,
              "estimators": {name: ESTIMATORS[name] for name in estimators(summary.rows)},
              "notes": summary.notes, "audit": summary.audit, "rows": summary.rows}
    with atomic_folder(target) as tmp:
        frame.to_csv(tmp / "summary.csv", index=False)
        write_workbook(tmp / "summary.xlsx", {"shares": frame, "estimators": pd.DataFrame({"note": summary.notes})})
        (tmp / "summary.json").write_text(json.dumps(record, indent=2), encoding="utf-8")
        plot(summary, tmp / "summary.png", tmp / "summary.svg")
        (tmp / "summary.html").write_text(page(summary, tmp / "summary.png"), encoding="utf-8")


# A group name longer than this is cut in the plot (the tables keep it whole): matplotlib lays out a 5 MB
# tick label for minutes.
MAX_TICK_CHARACTERS = 60


def tick_label(group: str) -> str:
    """A group's name as a tick label: at most MAX_TICK_CHARACTERS, cut with an ellipsis.

    >>> tick_label("x" * 100)[-3:], len(tick_label("x" * 100))
    ('xx…', 60)
    """
    return group if len(group) <= MAX_TICK_CHARACTERS else group[:MAX_TICK_CHARACTERS - 1] + "…"


def plot(summary: Any, png: Path, svg: Path) -> None:
    """One panel per label, its own scale; a bar per group and estimator with its 95% interval."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = estimators(summary.rows)
    groups = list(dict.fromkeys(r["group"] for r in summary.rows))
    fig, axes = plt.subplots(len(LABELS), 1, figsize=(max(7, 1.1 * len(groups) * len(names) / 2 + 3), 9),
                             sharex=True)
    width = 0.8 / len(names)
    x = np.arange(len(groups))
    for ax, label in zip(axes, LABELS, strict=True):
        rows = {r["group"]: r for r in summary.rows if r["label"] == label}
        for k, name in enumerate(names):
            values = np.array([rows[g][f"{name}_share"] for g in groups])
            errors = np.array([[rows[g][f"{name}_share"] - rows[g][f"{name}_low"] for g in groups],
                               [rows[g][f"{name}_high"] - rows[g][f"{name}_share"] for g in groups]])
            ax.bar(x + (k - (len(names) - 1) / 2) * width, values * 100, width, color=COLOURS[name],
                   yerr=np.clip(np.nan_to_num(errors), 0, None) * 100, capsize=2, label=SHORT[name])
        ax.set_ylabel(f"{label}, %")
        ax.set_ylim(bottom=0)
        ax.grid(axis="y", alpha=0.3)
    audited = {r["group"]: r["audited"] for r in summary.rows}
    ticks = [tick_label(str(g)) + (f"\n(audit {audited[g]})" if summary.audit else "") for g in groups]
    axes[-1].set_xticks(x, ticks, fontsize=8)
    axes[0].legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=len(names), frameon=False, fontsize=8)
    fig.suptitle(f"Share of sentences by {summary.by}: {SHORT[summary.primary]}"
                 + (" (prediction-powered inference)" if summary.primary == "ppi" else "")
                 + ", 95% intervals", fontsize=11)
    fig.tight_layout()
    fig.savefig(png, dpi=110)
    fig.savefig(svg)
    plt.close(fig)


def page(summary: Any, png: Path) -> str:
    """The HTML page: what each estimator is, the notes, the plot and the table."""
    names = estimators(summary.rows)
    image = base64.b64encode(png.read_bytes()).decode()
    head = "".join(f"<th>{html.escape(SHORT[n])}</th>" for n in names)
    body = "".join(
        f"<tr><td>{html.escape(str(r['group']))}</td><td>{r['label']}</td><td>{r['sentences']}</td>"
        f"<td>{r['audited']}</td>"
        + "".join(f"<td>{percent(r[f'{n}_share'])} [{percent(r[f'{n}_low'])}, {percent(r[f'{n}_high'])}]</td>"
                  for n in names) + "</tr>"
        for r in summary.rows)
    notes = "".join(f"<li>{html.escape(note)}</li>" for note in summary.notes)
    title = f"Sourcing by {html.escape(summary.by)}: {html.escape(SHORT[summary.primary])}"
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>{title}</title>
<style>body{{font-family:sans-serif;margin:2em auto;max-width:1100px;color:#222}}img{{max-width:100%}}table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:4px 8px;text-align:right}}</style>
</head><body><h1>{title}</h1>
<p>Model <code>{html.escape(summary.model)}</code>. Shares of sentences with 95% intervals.</p><ul>{notes}</ul>
<img src="data:image/png;base64,{image}" alt="label shares by {html.escape(summary.by)}">
<table><tr><th>{html.escape(summary.by)}</th><th>label</th><th>sentences</th><th>audited</th>{head}</tr>{body}</table>
</body></html>
"""
