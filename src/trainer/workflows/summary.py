"""`trainer summarize`: label shares per group (publisher, month, any column) of a tagged corpus.

Every share is given by a named estimator with a 95% interval (`trainer.estimators`):

- with `--audit FILE` (hand labels of a `trainer audit` sample): prediction-powered inference (`ppi`),
  beside the audit alone (`hand`) and the model's raw classify-and-count (`cc`), with the number of
  audited sentences in each group. A stratified audit's sentences are weighted by 1 / their inclusion
  probability;
- without an audit, with `--model` (the model that tagged): quantification with QuaPy (`emq` by
  default; `pacc`, `acc`) fitted on labeled real news (`configs/data/real-news.yaml`, or `--labeled`),
  which rests on an assumption the output states; plus `cc`;
- with neither: `cc` only, which assumes the model makes no errors on this corpus (said so).

Writes summary.csv, summary.xlsx, summary.json, a plot (PNG and SVG: one panel per label, each with
its own scale) and summary.html, whole or not at all; with `--track`, the summary and its audit are
logged to MLflow as a run whose dataset input is the audit.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from trainer.errors import ConfigError, DataError
from trainer.infra.atomic import check_replaceable
from trainer.estimators import (
    ESTIMATORS,
    QUANTIFICATION_ASSUMPTION,
    QUANTIFIERS,
    Estimate,
    audited_bounds,
    classify_and_count,
    hand_share,
    ppi_share,
)
from trainer.labels import LABELS
from trainer.metrics import N_RESAMPLES

log = logging.getLogger(__name__)

SUMMARY_FILES = ("summary.csv", "summary.xlsx", "summary.json", "summary.png", "summary.svg", "summary.html")
DEFAULT_LABELED = Path("configs/data/real-news.yaml")
# The quantifier's labeled set for a model that trained on DEFAULT_LABELED's labels (the distilled default does).
HELD_OUT_LABELED = Path("configs/data/real-news-dev-context.yaml")
ALL = "(all)"


@dataclass
class Summary:
    """What `summarize` found: one row per group and label, the estimator each figure comes from, and notes."""

    by: str
    model: str
    primary: str  # the estimator the plot and the headline use
    rows: list[dict[str, Any]]
    notes: list[str] = field(default_factory=list)
    audit: dict[str, Any] | None = None
    report: Path | None = None
    run_id: str | None = None


def _rows(group: str, articles: int, sentences: int, estimates: dict[str, list[Estimate]],
          audited: Any) -> list[dict[str, Any]]:
    """One row per label: each estimator's share and interval side by side."""
    rows = []
    for i, label in enumerate(LABELS):
        row: dict[str, Any] = {"group": group, "label": label, "articles": articles, "sentences": sentences,
                               "audited": 0 if audited is None else len(audited),
                               "audited_with_label": 0 if audited is None else int((audited["gold"] == label).sum())}
        for name, per_label in estimates.items():
            e = per_label[i]
            row |= {f"{name}_share": e.share, f"{name}_low": e.low, f"{name}_high": e.high}
        rows.append(row)
    return rows


def audit_estimates(sentences: Any, audited: Any) -> dict[str, list[Estimate]]:
    """PPI and hand-only estimates of each label's share over `sentences` (one group's tagged sentences)
    from `audited` (its audited sentences, with `gold` and `weight`)."""
    weights = audited["weight"].to_numpy(dtype=float) if len(audited) else None
    if weights is not None and np.allclose(weights, weights[0]):
        weights = None  # one inclusion probability: a simple random sample of this group
    ppi, hand = [], []
    for label in LABELS:
        y = (audited["gold"] == label).to_numpy(dtype=float)
        floor, ceiling = audited_bounds(y, len(sentences)) if len(y) else (0.0, 1.0)
        p = f"p_{label}"
        ppi.append(ppi_share(y, audited[p].to_numpy(), sentences[p].to_numpy(), weights, floor, ceiling))
        hand.append(hand_share(y, weights, floor))
    return {"ppi": ppi, "hand": hand}


def summarize(
    output: Path, by: str, report: Path | None = None, metadata: Path | None = None, key: str = "filename",
    audit: Path | None = None, model: str | None = None, labeled: Path | None = None,
    quantifier: str = QUANTIFIERS[0], n_resamples: int = N_RESAMPLES, track: bool = False,
) -> Summary:
    """Label shares per group of the tag output in `output`; files go to `report` (default output/summary-<by>)."""
    from trainer.workflows.groups import group_column, with_metadata
    from trainer.workflows.tagging import MANIFEST, read_tables

    if quantifier not in QUANTIFIERS:
        raise ConfigError(f"--quantifier: expected one of {', '.join(QUANTIFIERS)}, found {quantifier!r}")
    manifest_path = output / MANIFEST
    if not manifest_path.is_file():
        raise DataError(f"{output}: expected the output of `trainer tag` (with {MANIFEST}), found none")
    # a column name is data: any separator in it stays inside the name (`summary-.._.._x`), never a path out
    target = report or output / f"summary-{re.sub(r'[^A-Za-z0-9_.-]', '_', by)}"
    check_replaceable(target, SUMMARY_FILES, "--report")  # never replace a folder of other files
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise DataError(f"{manifest_path}: expected the manifest trainer tag wrote, found invalid JSON ({exc})") from None
    if not isinstance(manifest, dict) or "model" not in manifest:
        raise DataError(f"{manifest_path}: expected the manifest trainer tag wrote, found another JSON")
    articles = with_metadata(read_tables(output, "articles", required=True), metadata, key)
    if not len(articles):
        raise DataError(f"{output}: expected tagged articles, found none")
    articles["group"] = group_column(articles, by).to_numpy()
    sentences = read_tables(output, "sentences", required=True)
    sentences = sentences.merge(articles[["article_id", "group"]], on="article_id", how="left")
    audited, audit_info = (None, None)
    if audit is not None:
        from trainer.workflows.audit_labels import join_audit, read_audit

        audited, audit_info = join_audit(read_audit(audit), sentences)
    quantifiers = None
    if audit is None and model is not None:
        quantifiers = _fit_quantifiers(model, manifest, labeled or default_labeled(model), quantifier, n_resamples)
    summary = _estimate(articles, sentences, audited, quantifiers, quantifier, by, manifest, n_resamples)
    summary.audit = audit_info
    from trainer.outputs.summary_report import write_summary

    write_summary(summary, target)
    summary.report = target
    if track:
        from trainer.outputs.tracking import log_summary

        summary.run_id = log_summary(summary, target, audit, audited)
    return summary


def _estimate(articles: Any, sentences: Any, audited: Any, quantifiers: Any, quantifier: str, by: str,
              manifest: dict[str, Any], n_resamples: int) -> Summary:
    """Every group's (and the whole corpus's) estimates, and the notes that say what they rest on."""
    from trainer.estimators import quantify

    counts_columns = [f"n_{label}" for label in LABELS]
    rows: list[dict[str, Any]] = []
    for group in [*sorted(set(articles["group"])), ALL]:
        in_group = articles if group == ALL else articles[articles["group"] == group]
        group_sentences = sentences if group == ALL else sentences[sentences["group"] == group]
        estimates: dict[str, list[Estimate]] = {}
        group_audit = None
        if audited is not None:
            group_audit = audited if group == ALL else audited[audited["group"] == group]
            estimates |= audit_estimates(group_sentences, group_audit)
        if quantifiers is not None:
            per_article = [g[[f"p_{k}" for k in LABELS]].to_numpy() for _, g in group_sentences.groupby("article_id")]
            estimates[quantifier] = quantify(quantifiers, quantifier, per_article)
        estimates["cc"] = classify_and_count(in_group[counts_columns].to_numpy(), n_resamples)
        rows += _rows(group, len(in_group), len(group_sentences), estimates, group_audit)
    primary = "ppi" if audited is not None else quantifier if quantifiers is not None else "cc"
    notes = [f"{name}: {ESTIMATORS[name]}" for name in _estimators(rows[0])]
    if primary == "cc":
        notes.append("No audit and no --model: the shares are the model's labels counted, which assumes the model "
                     "makes no errors on this corpus. Audit a sample (trainer audit) for valid intervals.")
    missed = [f"{r['label']} in {r['group']}" for r in rows if r["cc_share"] == 0 and r["audited_with_label"]]
    if missed:
        notes.append(f"Classify-and-count is 0 where the audit finds the label ({', '.join(missed[:4])}"
                     f"{', ...' if len(missed) > 4 else ''}): the model misses it on this corpus.")
    if quantifiers is not None:
        notes.append(f"{quantifier} assumes {QUANTIFICATION_ASSUMPTION}. An audit of this corpus needs no such "
                     "assumption.")
        for warning in collapsed(rows, quantifier):
            log.warning(warning)
            notes.append(warning)
    return Summary(by, str(manifest["model"]), primary, rows, notes)


def collapsed(rows: list[dict[str, Any]], name: str) -> list[str]:
    """A warning for each label that estimator `name` puts at 0 with a zero-width interval in some group
    where the model does label sentences so: its assumption does not hold on this corpus."""
    notes = []
    for label in LABELS:
        groups = [r["group"] for r in rows if r["label"] == label and r[f"{name}_high"] < 1e-6 and r["cc_share"] > 0]
        if groups:
            notes.append(f"Warning: {name} puts {label} at 0 [0, 0] in {len(groups)} group(s) ({', '.join(groups[:4])}"
                         f"{', ...' if len(groups) > 4 else ''}) where the model labels sentences {label}: the labeled "
                         f"set's error rates do not hold on this corpus, so its assumption does not hold here. Audit "
                         "a random sample (trainer audit) instead.")
    return notes


def _estimators(row: dict[str, Any]) -> list[str]:
    return [name for name in ESTIMATORS if f"{name}_share" in row]


def label_files(sources: Any, root: Path | None = None) -> set[Path]:
    """The files of labels that data sources read (`path`, `labels`), resolved; `root` for relative ones."""
    files = set()
    for source in sources:
        for key in ("path", "labels"):
            value = source.get(key) if isinstance(source, dict) else getattr(source, key, None)
            if value:
                path = Path(value)
                files.add(((root / path) if root is not None and not path.is_absolute() else path).resolve())
    return files


def default_labeled(model: str) -> Path:
    """The labeled set to fit the quantifier on when none is given: the project's real-news labels, or the dev
    set (HELD_OUT_LABELED) when the model trained on those labels."""
    from trainer.config import load_data_config

    if not HELD_OUT_LABELED.is_file():
        return DEFAULT_LABELED
    try:
        sources = load_data_config(DEFAULT_LABELED).sources
    except (ConfigError, DataError):
        return DEFAULT_LABELED  # _fit_quantifiers says what is wrong with it
    try:
        check_held_out(model, DEFAULT_LABELED, sources)
    except ConfigError:
        log.info("%s trained on the labels of %s: fitting the quantifier on %s instead", Path(model).name,
                 DEFAULT_LABELED, HELD_OUT_LABELED)
        return HELD_OUT_LABELED
    return DEFAULT_LABELED


def check_held_out(model: str, labeled: Path, sources: Any) -> None:
    """A ConfigError when the model (a local folder) trained on a file of `labeled`'s labels: a quantifier fitted
    on sentences the model learned would see too few of its errors, and its intervals would be too narrow."""
    from trainer.outputs import model_folder

    folder = Path(model)
    trained = model_folder.read_json(folder / model_folder.RESOLVED_CONFIG) if folder.is_dir() else None
    if not isinstance(trained, dict) or not isinstance(trained.get("data"), dict):
        return
    shared = label_files(trained["data"].get("sources") or [], model_folder.project_of(folder)) & label_files(sources)
    if shared:
        names = ", ".join(sorted(p.name for p in shared))
        raise ConfigError(f"--labeled: expected labels that {folder.name} never trained on, found {names} in its "
                          f"training data ({labeled}); a quantifier fitted on them would miss its errors. Pass "
                          "held-out labels, e.g. --labeled configs/data/real-news-dev-context.yaml (the dev set)")


def _fit_quantifiers(model: str, manifest: dict[str, Any], labeled: Path, name: str, n_resamples: int) -> list[Any]:
    """The quantifier fitted on the model's probabilities over labeled real news, and on resamples of it."""
    from trainer.config import load_data_config
    from trainer.data.sources import read_source
    from trainer.estimators import fit_quantifiers
    from trainer.workflows.predict import load_classifier, model_label

    if model_label(model) != manifest["model"]:
        raise ConfigError(f"--model: expected the model that tagged this output ({manifest['model']!r}), found "
                          f"{model_label(model)!r}; the quantifier must learn the errors of that model")
    if not labeled.is_file():
        raise ConfigError(f"--labeled: expected a data config of labeled real news, found nothing at {labeled}")
    sources = load_data_config(labeled).sources
    check_held_out(model, labeled, sources)
    examples = [e for s in sources for e in read_source(s, progress=False).examples if e.label_source != "rule"]
    if not examples:
        raise DataError(f"{labeled}: expected hand-labeled sentences to fit the quantifier on, found none")
    log.info("fitting %s on %d labeled sentences of %s", name, len(examples), labeled)
    classifier = load_classifier(model)
    probabilities = np.array([list(p.probabilities.values()) for p in classifier.predict([e.text for e in examples])])
    gold = np.array([LABELS.index(e.label) for e in examples])
    return fit_quantifiers(name, probabilities, gold, min(n_resamples, 200))
