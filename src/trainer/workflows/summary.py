"""`trainer summarize`: label shares per group (publisher, month, any column) of a tagged corpus.

Each group's share of a label is its sentences with that label over all its sentences, with a 95%
bootstrap interval over the group's articles (whole articles are resampled). Where the tag output
carries the model's validation confusion matrix, the shares are also adjusted for the model's
errors (adjusted classify-and-count). Writes a CSV, a JSON, a plot (PNG and SVG) and an HTML page.
"""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path
from typing import Any

import numpy as np

from trainer.infra.atomic import atomic_folder, check_replaceable
from trainer.errors import ConfigError, DataError
from trainer.labels import LABELS
from trainer.metrics import BOOTSTRAP_SEED, N_RESAMPLES, adjusted_from_counts, confusion_rates

SUMMARY_FILES = ("summary.csv", "summary.json", "summary.png", "summary.svg", "summary.html")
DATE_COLUMNS = ("date", "publication_date", "published", "month")


def _with_metadata(articles: Any, metadata: Path | None, key: str) -> Any:
    import pandas as pd

    if metadata is None:
        return articles
    sep = "\t" if metadata.suffix.lower() == ".tsv" else ","
    try:
        extra = (pd.read_json(metadata, lines=True) if metadata.suffix.lower() == ".jsonl"
                 else pd.read_csv(metadata, sep=sep))
    except (ValueError, OSError) as exc:  # pandas' parser errors are ValueErrors, decoding ones too
        raise DataError(f"--metadata {metadata}: expected a UTF-8 CSV, TSV or JSONL table, found one that cannot be "
                        f"read ({str(exc).splitlines()[0][:200]})") from None
    if key not in extra.columns:
        raise ConfigError(f"--key: expected a column {key!r} in {metadata}, found {list(extra.columns)}")
    extra = extra.astype(str).rename(columns={key: "article_id"})
    overlap = [c for c in extra.columns if c in articles.columns and c != "article_id"]
    return articles.drop(columns=overlap).merge(extra, on="article_id", how="left")


def _group_column(articles: Any, by: str) -> Any:
    if by != "month":
        if by not in articles.columns:
            raise ConfigError(f"--by: expected a column of the articles table, found {by!r}; "
                              f"columns: {', '.join(sorted(articles.columns))}")
        return articles[by].astype(str)
    column = next((c for c in DATE_COLUMNS if c in articles.columns), None)
    if column is None:
        raise ConfigError(f"--by month: expected a date column ({', '.join(DATE_COLUMNS)}), found none; "
                          "pass --metadata with dates")
    return articles[column].astype(str).str.slice(0, 7)


def summarize_shares(
    articles: Any, groups: Any, rates: np.ndarray | None, n_resamples: int = N_RESAMPLES, seed: int = BOOTSTRAP_SEED
) -> list[dict[str, Any]]:
    """One row per group: articles, sentences, and each label's raw (and adjusted) share with its interval."""
    rng = np.random.default_rng(seed)
    counts_columns = [f"n_{label}" for label in LABELS]
    rows = []
    for group in sorted(set(groups)):
        counts = articles.loc[groups == group, counts_columns].to_numpy(dtype=float)
        total = counts.sum(axis=0)
        row: dict[str, Any] = {"group": group, "articles": len(counts), "sentences": int(total.sum())}
        draws = rng.integers(0, len(counts), size=(n_resamples, len(counts)))
        sampled = counts[draws].sum(axis=1)  # (n_resamples, labels): sentences per label in each resample
        raw = sampled / np.maximum(sampled.sum(axis=1, keepdims=True), 1)
        point = total / max(total.sum(), 1)
        adjusted = None
        if rates is not None:
            adjusted = np.array([adjusted_from_counts(s, rates) for s in sampled])
            adjusted_point = adjusted_from_counts(total, rates)
        for i, label in enumerate(LABELS):
            low, high = np.percentile(raw[:, i], [2.5, 97.5])
            row[f"{label}_share"], row[f"{label}_low"], row[f"{label}_high"] = float(point[i]), float(low), float(high)
            if adjusted is not None:
                low, high = np.percentile(adjusted[:, i], [2.5, 97.5])
                row[f"{label}_adjusted"] = float(adjusted_point[i])
                row[f"{label}_adjusted_low"], row[f"{label}_adjusted_high"] = float(low), float(high)
        rows.append(row)
    return rows


def _plot(rows: list[dict[str, Any]], by: str, adjusted: bool, png: Path, svg: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    kind = "adjusted" if adjusted else "share"
    fig, ax = plt.subplots(figsize=(max(6, 1.2 * len(rows) + 2), 4.5))
    width = 0.8 / len(LABELS)
    x = np.arange(len(rows))
    for i, label in enumerate(LABELS):
        key = f"{label}_adjusted" if adjusted else f"{label}_share"
        low_key, high_key = (f"{label}_adjusted_low", f"{label}_adjusted_high") if adjusted else (f"{label}_low", f"{label}_high")
        values = np.array([r[key] for r in rows])
        errors = np.array([[r[key] - r[low_key] for r in rows], [r[high_key] - r[key] for r in rows]])
        ax.bar(x + (i - 1) * width, values * 100, width, yerr=np.clip(errors, 0, None) * 100, capsize=3, label=label)
    ax.set_xticks(x, [f"{r['group']}\n({r['articles']} art.)" for r in rows], fontsize=8)
    ax.set_ylabel(f"share of sentences, % ({kind}; 95% CI over articles)")
    ax.set_title(f"Sourcing by {by}", pad=28)
    # above the bars, in one row: inside the axes it hides the tallest group's bars
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=len(LABELS), frameon=False, fontsize=9)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(png, dpi=120)
    fig.savefig(svg)
    plt.close(fig)


def summarize(output: Path, by: str, report: Path | None = None, metadata: Path | None = None, key: str = "filename",
              n_resamples: int = N_RESAMPLES) -> list[dict[str, Any]]:
    """Label shares per group of the tag output in `output`; files go to `report` (default output/summary-<by>)."""
    import pandas as pd

    from trainer.workflows.tagging import MANIFEST, read_tables

    manifest_path = output / MANIFEST
    if not manifest_path.is_file():
        raise DataError(f"{output}: expected the output of `trainer tag` (with {MANIFEST}), found none")
    target = report or output / f"summary-{by}"
    check_replaceable(target, SUMMARY_FILES, "--report")
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise DataError(f"{manifest_path}: expected the manifest trainer tag wrote, found invalid JSON ({exc})") from None
    if not isinstance(manifest, dict) or "model" not in manifest:
        raise DataError(f"{manifest_path}: expected the manifest trainer tag wrote, found another JSON")
    articles = read_tables(output, "articles")
    if not len(articles):
        raise DataError(f"{output}: expected tagged articles, found none")
    articles = _with_metadata(articles, metadata, key)
    groups = _group_column(articles, by)
    confusion = manifest.get("validation_confusion")
    rates = confusion_rates(confusion) if confusion else None
    rows = summarize_shares(articles, groups, rates, n_resamples)
    with atomic_folder(target) as tmp:
        pd.DataFrame(rows).to_csv(tmp / "summary.csv", index=False)
        (tmp / "summary.json").write_text(json.dumps({"by": by, "model": manifest["model"], "groups": rows,
                                                      "adjusted": rates is not None}, indent=2), encoding="utf-8")
        _plot(rows, by, False, tmp / "summary.png", tmp / "summary.svg")
        (tmp / "summary.html").write_text(_html(rows, by, manifest, tmp / "summary.png", rates is not None),
                                          encoding="utf-8")
    return rows


def _html(rows: list[dict[str, Any]], by: str, manifest: dict[str, Any], png: Path, adjusted: bool) -> str:
    image = base64.b64encode(png.read_bytes()).decode()
    head = "".join(f"<th>{html.escape(label)} raw</th>" + (f"<th>{html.escape(label)} adjusted</th>" if adjusted else "")
                   for label in LABELS)
    body = []
    for r in rows:
        cells = ""
        for label in LABELS:
            cells += f"<td>{r[f'{label}_share']:.1%} [{r[f'{label}_low']:.1%}, {r[f'{label}_high']:.1%}]</td>"
            if adjusted:
                cells += (f"<td>{r[f'{label}_adjusted']:.1%} [{r[f'{label}_adjusted_low']:.1%}, "
                          f"{r[f'{label}_adjusted_high']:.1%}]</td>")
        body.append(f"<tr><td>{html.escape(str(r['group']))}</td><td>{r['articles']}</td><td>{r['sentences']}</td>{cells}</tr>")
    note = ("Adjusted: classify-and-count corrected with the model's confusion rates on its validation split."
            if adjusted else "No confusion rates in the tag output: raw shares only.")
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>Sourcing by {html.escape(by)}</title>
<style>body{{font-family:sans-serif;margin:2em auto;max-width:1100px;color:#222}}img{{max-width:100%}}table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:4px 8px;text-align:right}}</style>
</head><body><h1>Sourcing by {html.escape(by)}</h1>
<p>Model <code>{html.escape(str(manifest['model']))}</code>. Shares of sentences with 95% bootstrap intervals over
articles. {note}</p>
<img src="data:image/png;base64,{image}" alt="label shares by {html.escape(by)}">
<table><tr><th>{html.escape(by)}</th><th>articles</th><th>sentences</th>{head}</tr>{''.join(body)}</table>
</body></html>
"""
