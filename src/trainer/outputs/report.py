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
from trainer.outputs.model_folder import METRICS_FILE, REPORT_JSON

REPORT_HTML = "report.html"
REPORT_FILE = "classification_report.txt"
CONFUSION_FILE = "confusion_matrix.png"
RELIABILITY_FILE = "reliability.png"
MISCLASSIFIED_FILE = "misclassified.jsonl"
PREDICTIONS_FILE = "predictions.parquet"
# Every figure is also written as SVG (for a paper), every table as CSV and LaTeX, under tables/.
SVG_FILES = tuple(Path(name).with_suffix(".svg").name for name in (CONFUSION_FILE, RELIABILITY_FILE))
TABLES_DIR = "tables"
REPORT_FILES = (METRICS_FILE, REPORT_JSON, REPORT_HTML, REPORT_FILE, CONFUSION_FILE, RELIABILITY_FILE, *SVG_FILES,
                MISCLASSIFIED_FILE, PREDICTIONS_FILE)


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams["svg.fonttype"] = "none"  # SVG text stays text: searchable, editable, smaller
    return plt


def save_figure(fig: Any, path: Path) -> None:
    """The figure as PNG at `path` and as SVG beside it."""
    fig.savefig(path)
    fig.savefig(path.with_suffix(".svg"))


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
    save_figure(fig, path)
    plt.close(fig)


def plot_reliability(reliability: dict[str, Any], path: Path, title: str) -> None:
    """Reliability diagram: each bin's accuracy (with its Wilson interval) at the bin's mean confidence,
    against the diagonal; below it, how many sentences each bin holds. Bins with fewer than
    `min_bin_n` sentences are drawn hatched and pale: too few to read."""
    plt = _pyplot()
    bins = [b for b in reliability["bins"] if b["n"]]
    min_n = reliability.get("min_bin_n", 0)
    fig, (ax, counts) = plt.subplots(2, 1, figsize=(5.6, 6.4), dpi=110, sharex=True,
                                     gridspec_kw={"height_ratios": [3, 1.3]})
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=1, label="perfect calibration")
    for b in bins:
        few = b["n"] < min_n
        ax.bar((b["low"] + b["high"]) / 2, b["accuracy"], width=b["high"] - b["low"], color="C0",
               alpha=0.15 if few else 0.55, edgecolor="black", linewidth=0.6, hatch="//" if few else None)
    solid = [b for b in bins if b["n"] >= min_n]
    for group, style in ((solid, {"color": "C3"}), ([b for b in bins if b["n"] < min_n], {"color": "0.6"})):
        if group:
            low = [max(0.0, b["accuracy"] - b["accuracy_ci"][0]) for b in group]  # no -1e-16 at accuracy 1
            high = [max(0.0, b["accuracy_ci"][1] - b["accuracy"]) for b in group]
            ax.errorbar([b["confidence"] for b in group], [b["accuracy"] for b in group], yerr=[low, high],
                        fmt="o", markersize=4, capsize=2, linewidth=1, **style)
    ax.plot([], [], "o", color="C3", label="accuracy at the bin's mean confidence (95% interval)")
    if len(solid) < len(bins):
        ax.bar([0], [0], color="C0", alpha=0.15, hatch="//", edgecolor="black", label=f"bin with n < {min_n}: too few to read")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_ylabel("accuracy")
    ax.set_title(f"{title}\nECE {reliability['ece']:.3f}, {reliability.get('n', sum(b['n'] for b in bins))} sentences",
                 fontsize=10)
    ax.legend(loc="upper left", fontsize=7)
    centers = [(b["low"] + b["high"]) / 2 for b in bins]
    for x, b in zip(centers, bins):
        few = b["n"] < min_n
        counts.bar(x, b["n"], width=b["high"] - b["low"], color="C0", alpha=0.15 if few else 0.55, edgecolor="black",
                   linewidth=0.6, hatch="//" if few else None)
    for x, b in zip(centers, bins):
        counts.annotate(f"{b['n']}", (x, b["n"]), ha="center", va="bottom", fontsize=7, xytext=(0, 1),
                        textcoords="offset points")
    counts.set_yscale("log")
    counts.set_ylim(0.7, max(b["n"] for b in bins) * 4 if bins else 10)
    counts.set_ylabel("sentences (log)")
    counts.set_xlabel("confidence (probability of the predicted label)")
    fig.tight_layout()
    save_figure(fig, path)
    plt.close(fig)


def _image(path: Path) -> str:
    return f'<img alt="{path.stem}" src="data:image/png;base64,{base64.b64encode(path.read_bytes()).decode()}">'


def format_ci(value: float, ci: tuple[float, float] | None) -> str:
    """`0.854 [0.812, 0.890]`, or `0.854` without an interval."""
    return f"{value:.3f}" + (f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else "")


def slice_rows(slices: dict[str, Any]) -> list[list[str]]:
    """Table rows of one metadata column: value, n, macro-F1 [95% CI], then each label's F1 [CI] (n)."""
    rows = []
    for value, m in slices.items():
        ci = m.get("ci", {})
        rows.append([value, str(m["n"]), format_ci(m["macro_f1"], ci.get("macro_f1"))] + [
            f"{format_ci(m['per_label'][label]['f1'], ci.get(f'{label}_f1'))} ({m['per_label'][label]['support']})"
            for label in LABELS])
    return rows


SLICE_HEADER = ["n", "macro-F1 [95% CI]", *[f"{label} F1 [95% CI] (n)" for label in LABELS]]
PER_LABEL_HEADER = ["label", "precision", "recall", "F1 [95% CI]", "n"]


def per_label_rows(report: dict[str, Any]) -> list[list[str]]:
    """Table rows: label, precision, recall, F1 [95% CI], n."""
    metrics, ci = report["metrics"], report.get("ci", {})
    rows = []
    for label in LABELS:
        v = metrics["per_label"][label]
        rows.append([label, f"{v['precision']:.3f}", f"{v['recall']:.3f}", format_ci(v["f1"], ci.get(f"{label}_f1")),
                     str(v["support"])])
    rows.append(["macro", "", "", format_ci(metrics["macro_f1"], ci.get("macro_f1")), str(metrics["n"])])
    return rows


def _table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


SHARES_HEADER = ["label", "true share", "raw share [95% CI]", "adjusted share [95% CI]"]


def share_rows(report: dict[str, Any]) -> list[list[str]]:
    """What a study counts, per label: the true share (gold), the raw classify-and-count share and the
    share adjusted for the model's errors, each with its interval ("" where there is none)."""
    shares = report.get("shares") or {}

    def cell(kind: str, label: str) -> str:
        value = (shares.get(kind) or {}).get(label)
        if value is None:
            return ""
        if isinstance(value, dict):
            low, high = value["ci"]
            return f"{value['share']:.3f} [{low:.3f}, {high:.3f}]"
        return f"{value:.3f}"

    return [[label, cell("gold", label), cell("raw", label), cell("adjusted", label)] for label in LABELS
            if shares.get("raw")]


def provenance_rows(report: dict[str, Any]) -> list[list[str]]:
    """What produced the figures: model, training run, data fingerprints, code, packages, date."""
    where = report.get("provenance") or {}
    names = {"model": "model", "training_run": "training run (MLflow)", "model_dataset": "trained on (fingerprint)",
             "dataset": "built dataset (fingerprint)", "data": "evaluated on", "data_fingerprint": "evaluated data (fingerprint)", "trainer_version": "trainer",
             "git_commit": "code (git commit)", "lock_sha256": "requirements/lock.txt (sha256)",
             "precision": "precision", "hardware": "hardware", "created": "evaluated at (UTC)"}
    return [[label, str(where[key])] for key, label in names.items() if where.get(key) not in (None, "")]


def tables(report: dict[str, Any]) -> dict[str, tuple[list[str], list[list[str]]]]:
    """Every table of the report by file stem: (header, rows)."""
    found = {"per_label": (PER_LABEL_HEADER, per_label_rows(report))}
    if report.get("shares", {}).get("raw"):
        found["shares"] = (SHARES_HEADER, share_rows(report))
    for column, slices in report.get("slices", {}).items():
        found[f"by_{column}"] = ([column, *SLICE_HEADER], slice_rows(slices))
    if report.get("provenance"):
        found["provenance"] = (["item", "value"], provenance_rows(report))
    return found


def write_tables(out_dir: Path, report: dict[str, Any]) -> None:
    """Each table as CSV (for analysis) and LaTeX (for a paper) under tables/."""
    import pandas as pd

    folder = out_dir / TABLES_DIR
    folder.mkdir(parents=True, exist_ok=True)
    for stem, (header, rows) in tables(report).items():
        frame = pd.DataFrame(rows, columns=header)
        frame.to_csv(folder / f"{stem}.csv", index=False)
        caption = f"{report['title']}: {stem.replace('_', ' ')}"
        (folder / f"{stem}.tex").write_text(
            frame.to_latex(index=False, caption=caption, label=f"tab:{stem}", escape=True), encoding="utf-8")


def _shares_section(report: dict[str, Any]) -> list[str]:
    """The label shares a study counts, with what the adjustment assumed."""
    rows = share_rows(report)
    if not rows:
        return []
    adjusted = (report.get("shares") or {}).get("adjusted_with")
    note = (f"Adjusted: adjusted classify-and-count with {html.escape(adjusted)}; it assumes those error rates "
            "hold on these sentences." if adjusted else "No adjusted shares: the model has no validation confusion "
            "matrix.")
    return ["<h2>Label shares</h2>", f"<p>Share of sentences per label; intervals are 95% bootstraps over "
            f"{html.escape(report.get('ci_unit', 'sentences'))}. {note}</p>", _table(SHARES_HEADER, rows)]


def write_html(out_dir: Path, report: dict[str, Any]) -> None:
    """One self-contained HTML page (plots embedded) with every figure of the report."""
    parts = [
        f"<h1>{html.escape(report['title'])}</h1>",
        f"<p>{report['metrics']['n']} sentences; accuracy {report['metrics']['accuracy']:.3f}; "
        f"ECE {report['calibration']['ece']:.3f}. Intervals: 95% bootstrap over "
        f"{html.escape(report['ci_unit'])} ({report['n_resamples']} resamples). Tables as CSV and LaTeX in "
        f"{TABLES_DIR}/, figures as SVG beside this page, every prediction in {PREDICTIONS_FILE}.</p>",
        _table(PER_LABEL_HEADER, per_label_rows(report)),
        *_shares_section(report),
        _image(out_dir / CONFUSION_FILE),
        _image(out_dir / RELIABILITY_FILE),
    ]
    for column, slices in report.get("slices", {}).items():
        parts += [f"<h2>By {html.escape(column)}</h2>", _table([column, *SLICE_HEADER], slice_rows(slices))]
    parts.append("<h2>Most confident mistakes</h2>")
    for pair, mistakes in report.get("confident_mistakes", {}).items():
        rows = [[f"{m['score']:.3f}", m["text"], str(m.get("article", "")),
                 str(m.get("context") or m.get("paragraph") or ""), ", ".join(m.get("rule_cues") or [])]
                for m in mistakes]
        parts += [f"<h3>{html.escape(pair)}</h3>",
                  _table(["p(predicted)", "sentence", "article", "in context", "rule cues"], rows)]
    if report.get("provenance"):
        parts += ["<h2>Provenance</h2>", _table(["", ""], provenance_rows(report))]
    style = (
        "body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}"
        "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}"
        "img{max-width:100%;margin:1em 0}"
    )
    page = f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(report['title'])}</title>" \
           f"<style>{style}</style></head><body>{''.join(parts)}</body></html>"
    (out_dir / REPORT_HTML).write_text(page, encoding="utf-8")


def write_report(out_dir: Path, report: dict[str, Any]) -> None:
    """Every report file except the predictions and misclassified.jsonl (written while predicting)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / METRICS_FILE).write_text(json.dumps(report["metrics"], indent=2), encoding="utf-8")
    (out_dir / REPORT_JSON).write_text(json.dumps(report, indent=2, ensure_ascii=False), encoding="utf-8")
    (out_dir / REPORT_FILE).write_text(f"{report['title']}\n\n{format_table(report['metrics'])}\n", encoding="utf-8")
    plot_confusion(report["metrics"]["confusion_matrix"], out_dir / CONFUSION_FILE, report["title"])
    plot_reliability(report["calibration"], out_dir / RELIABILITY_FILE, report["title"])
    write_tables(out_dir, report)
    write_html(out_dir, report)
