"""Evaluation reports: plots, a JSON of every figure and a self-contained HTML page.

Pure writers: they take computed figures and write files; nothing here predicts or tracks.
"""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path
from typing import Any

import numpy as np

from trainer.labels import LABELS
from trainer.metrics import format_table
from trainer.model_folder import METRICS_FILE, REPORT_JSON

REPORT_HTML = "report.html"
REPORT_FILE = "classification_report.txt"
CONFUSION_FILE = "confusion_matrix.png"
RELIABILITY_FILE = "reliability.png"
MISCLASSIFIED_FILE = "misclassified.jsonl"
REPORT_FILES = (METRICS_FILE, REPORT_JSON, REPORT_HTML, REPORT_FILE, CONFUSION_FILE, RELIABILITY_FILE, MISCLASSIFIED_FILE)


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_confusion(matrix: list[list[int]], path: Path, title: str) -> None:
    """Counts and row-normalised confusion matrices side by side (rows gold, columns predicted)."""
    plt = _pyplot()
    from sklearn.metrics import ConfusionMatrixDisplay

    counts = np.asarray(matrix)
    rows = counts.sum(axis=1, keepdims=True)
    normalised = np.divide(counts, rows, out=np.zeros_like(counts, dtype=float), where=rows > 0)
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.5), dpi=110)
    for ax, values, name, fmt in ((axes[0], counts, "counts", "d"), (axes[1], normalised, "share of gold row", ".2f")):
        ConfusionMatrixDisplay(values, display_labels=list(LABELS)).plot(
            ax=ax, cmap="Blues", colorbar=False, values_format=fmt
        )
        ax.set_title(name, fontsize=10)
        ax.set_xlabel("predicted")
        ax.set_ylabel("gold")
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plot_reliability(reliability: dict[str, Any], path: Path, title: str) -> None:
    """Reliability diagram: accuracy per confidence bin against the diagonal, with bin sizes."""
    plt = _pyplot()
    bins = [b for b in reliability["bins"] if b["n"]]
    fig, ax = plt.subplots(figsize=(5, 4.5), dpi=110)
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=1, label="perfect calibration")
    centers = [(b["low"] + b["high"]) / 2 for b in bins]
    ax.bar(centers, [b["accuracy"] for b in bins], width=[b["high"] - b["low"] for b in bins], alpha=0.6,
           edgecolor="black", label="accuracy in bin")
    ax.plot([b["confidence"] for b in bins], [b["accuracy"] for b in bins], marker="o", color="C3",
            label="mean confidence")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("confidence (probability of the predicted label)")
    ax.set_ylabel("accuracy")
    ax.set_title(f"{title}\nECE {reliability['ece']:.3f}", fontsize=10)
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _image(path: Path) -> str:
    return f'<img alt="{path.stem}" src="data:image/png;base64,{base64.b64encode(path.read_bytes()).decode()}">'


def _fmt_ci(value: float, ci: tuple[float, float] | None) -> str:
    return f"{value:.3f}" + (f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else "")


def per_label_rows(report: dict[str, Any]) -> list[list[str]]:
    """Table rows: label, precision, recall, F1 [95% CI], n."""
    metrics, ci = report["metrics"], report.get("ci", {})
    rows = []
    for label in LABELS:
        v = metrics["per_label"][label]
        rows.append([label, f"{v['precision']:.3f}", f"{v['recall']:.3f}", _fmt_ci(v["f1"], ci.get(f"{label}_f1")),
                     str(v["support"])])
    rows.append(["macro", "", "", _fmt_ci(metrics["macro_f1"], ci.get("macro_f1")), str(metrics["n"])])
    return rows


def _table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def write_html(out_dir: Path, report: dict[str, Any]) -> None:
    """One self-contained HTML page (plots embedded) with every figure of the report."""
    parts = [
        f"<h1>{html.escape(report['title'])}</h1>",
        f"<p>{report['metrics']['n']} sentences; accuracy {report['metrics']['accuracy']:.3f}; "
        f"ECE {report['calibration']['ece']:.3f}. Intervals: 95% bootstrap over "
        f"{html.escape(report['ci_unit'])} ({report['n_resamples']} resamples).</p>",
        _table(["label", "precision", "recall", "F1 [95% CI]", "n"], per_label_rows(report)),
        _image(out_dir / CONFUSION_FILE),
        _image(out_dir / RELIABILITY_FILE),
    ]
    for column, slices in report.get("slices", {}).items():
        rows = [
            [value, str(m["n"]), f"{m['macro_f1']:.3f}"] + [f"{m['per_label'][label]['f1']:.3f}" for label in LABELS]
            for value, m in slices.items()
        ]
        parts += [f"<h2>By {html.escape(column)}</h2>", _table([column, "n", "macro-F1", *LABELS], rows)]
    parts.append("<h2>Most confident mistakes</h2>")
    for pair, mistakes in report.get("confident_mistakes", {}).items():
        rows = [[f"{m['score']:.3f}", m["text"]] for m in mistakes]
        parts += [f"<h3>{html.escape(pair)}</h3>", _table(["p(predicted)", "sentence"], rows)]
    style = (
        "body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}"
        "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}"
        "img{max-width:100%;margin:1em 0}"
    )
    page = f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(report['title'])}</title>" \
           f"<style>{style}</style></head><body>{''.join(parts)}</body></html>"
    (out_dir / REPORT_HTML).write_text(page, encoding="utf-8")


def write_report(out_dir: Path, report: dict[str, Any]) -> None:
    """Every report file except misclassified.jsonl (written while predicting)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / METRICS_FILE).write_text(json.dumps(report["metrics"], indent=2), encoding="utf-8")
    (out_dir / REPORT_JSON).write_text(json.dumps(report, indent=2, ensure_ascii=False), encoding="utf-8")
    (out_dir / REPORT_FILE).write_text(f"{report['title']}\n\n{format_table(report['metrics'])}\n", encoding="utf-8")
    plot_confusion(report["metrics"]["confusion_matrix"], out_dir / CONFUSION_FILE, report["title"])
    plot_reliability(report["calibration"], out_dir / RELIABILITY_FILE, report["title"])
    write_html(out_dir, report)
