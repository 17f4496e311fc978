"""`trainer audit`: a seeded random sample of a tag output's sentences, to label by hand.

The sample is what makes study figures valid: `trainer summarize --audit` compares the hand labels
with the model's on these sentences and corrects every share for the model's errors on this corpus
(prediction-powered inference). It must be random, so nothing is chosen by the model: a simple
random sample of `n` sentences, or one stratified by a column of the articles (publisher, month)
with `per_stratum` sentences from each stratum (all of a stratum's sentences when it has fewer).

Written, whole or not at all, into a new folder: Label Studio tasks (the sentence, and its
paragraph with the one before it as context, the sentence marked; no model guess), the labeling
config, the same rows as CSV with an empty `label` column, and `audit.json`, the design: population,
strata with their sizes, and each sentence's inclusion probability (also in every task and row).
"""

from __future__ import annotations

import csv
import html
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from trainer.errors import ConfigError, DataError
from trainer.infra.atomic import atomic_folder

AUDIT_MANIFEST = "audit.json"
AUDIT_SEED = 13
ROW_COLUMNS = ("audit_id", "article_id", "sentence_index", "paragraph_index", "start", "end", "stratum",
               "inclusion_probability", "text", "label")


@dataclass
class AuditResult:
    output: Path
    sentences: int
    population: int
    strata: list[dict[str, Any]]


def draw(strata: Any, n: int | None, per_stratum: int | None, seed: int) -> tuple[np.ndarray, dict[str, float]]:
    """Positions of the sampled sentences (sorted) and each stratum's inclusion probability: `n` at
    random from all (one stratum), or `per_stratum` from each (all of a smaller stratum).

    >>> draw(np.array(["a"] * 6 + ["b"] * 2), None, 3, 1)[1]
    {'a': 0.5, 'b': 1.0}
    """
    rng = np.random.default_rng(seed)
    strata = np.asarray(strata)
    picks, probability = [], {}
    for stratum in sorted(set(strata.tolist())):
        members = np.flatnonzero(strata == stratum)
        k = min(per_stratum if per_stratum is not None else int(n or 0), len(members))
        picks.append(rng.choice(members, k, replace=False))
        probability[str(stratum)] = k / len(members)
    return np.sort(np.concatenate(picks)), probability


def _paragraphs(sentences: Any) -> dict[tuple[str, int], list[Any]]:
    """(article, paragraph index) -> its sentence rows in order."""
    out: dict[tuple[str, int], list[Any]] = {}
    for row in sentences.sort_values(["article_id", "sentence_index"]).itertuples(index=False):
        out.setdefault((row.article_id, int(row.paragraph_index)), []).append(row)
    return out


def context(row: Any, paragraphs: dict[tuple[str, int], list[Any]]) -> tuple[str, str]:
    """The sentence's paragraph and the one before it, as text and as HTML with the sentence marked."""
    indexes = sorted(i for a, i in paragraphs if a == row.article_id and i <= int(row.paragraph_index))[-2:]
    plain, marked = [], []
    for index in indexes:
        rows = paragraphs[(row.article_id, index)]
        plain.append(" ".join(r.text for r in rows))
        marked.append(" ".join(f"<mark><b>{html.escape(r.text)}</b></mark>" if r.sentence_index == row.sentence_index
                               else html.escape(r.text) for r in rows))
    return "\n\n".join(plain), "".join(f"<p>{p}</p>" for p in marked)


def audit(
    output: Path, destination: Path, n: int | None = None, by: str | None = None, per_stratum: int | None = None,
    metadata: Path | None = None, key: str = "filename", seed: int = AUDIT_SEED,
) -> AuditResult:
    """Sample the tag output in `output` for a hand-labeled audit, into the new folder `destination`."""
    from trainer.workflows.groups import group_column, with_metadata
    from trainer.workflows.tagging import MANIFEST, read_tables

    if (n is None) == (per_stratum is None):
        raise ConfigError("expected either --n (a simple random sample) or --by with --per-stratum (stratified), "
                          "found " + ("both" if n is not None else "neither"))
    if per_stratum is not None and by is None:
        raise ConfigError("--per-stratum: expected --by COLUMN as well (the strata), found none")
    if destination.exists():
        raise ConfigError(f"--output: expected a new folder, found existing {destination}; choose another")
    if not (output / MANIFEST).is_file():
        raise DataError(f"{output}: expected the output of `trainer tag` (with {MANIFEST}), found none")
    sentences = read_tables(output, "sentences", required=True)
    if not len(sentences):
        raise DataError(f"{output}: expected tagged sentences, found none")
    strata = np.array(["all"] * len(sentences), dtype=object)
    if by is not None:
        articles = with_metadata(read_tables(output, "articles", required=True), metadata, key)
        groups = dict(zip(articles["article_id"], group_column(articles, by), strict=True))
        strata = sentences["article_id"].map(groups).fillna("(none)").astype(str).to_numpy()
    if n is not None and n > len(sentences):
        raise ConfigError(f"--n: expected at most the {len(sentences)} tagged sentences, found {n}")
    picks, probability = draw(strata, n, per_stratum, seed)
    sizes = {s: int((strata == s).sum()) for s in probability}
    design = {"tag_output": str(output), "model": json.loads((output / MANIFEST).read_text(encoding="utf-8"))["model"],
              "design": "stratified" if by is not None else "simple random sample", "by": by, "seed": seed,
              "population": len(sentences),
              "strata": [{"stratum": s, "sentences": sizes[s], "sampled": round(p * sizes[s]),
                          "inclusion_probability": p} for s, p in probability.items()]}
    picked = sentences.iloc[picks]
    # the context of each pick: its paragraph and the one before, from its article's sentences
    paragraphs = _paragraphs(sentences[sentences["article_id"].isin(set(picked["article_id"]))])
    contexts = [context(row, paragraphs) for row in picked.itertuples(index=False)]
    _write(destination, picked, strata[picks], probability, design, contexts)
    return AuditResult(destination, len(picks), len(sentences), design["strata"])


def _write(destination: Path, picked: Any, strata: np.ndarray, probability: dict[str, float],
           design: dict[str, Any], contexts: list[tuple[str, str]]) -> None:
    """The tasks (no prediction: the annotator never sees the model's guess), config, CSV and design."""
    from trainer.workflows.selection import CONFIG_FILE, ROWS_CSV, TASKS_FILE, Candidate, label_studio_config, task

    tasks, rows = [], []
    for number, (row, stratum, (plain, marked)) in enumerate(
            zip(picked.itertuples(index=False), strata, contexts, strict=True)):
        design_meta = {"audit_id": number, "stratum": str(stratum), "inclusion_probability": probability[stratum]}
        rows.append({"article_id": row.article_id, "sentence_index": int(row.sentence_index),
                     "paragraph_index": int(row.paragraph_index), "start": int(row.start), "end": int(row.end),
                     "text": row.text, "label": "", **design_meta})
        candidate = Candidate(row.article_id, int(row.sentence_index), int(row.paragraph_index), row.text,
                              int(row.start), int(row.end), plain, design["tag_output"], design_meta)
        tasks.append(task(candidate, None, "", context_html=marked))
    with atomic_folder(destination) as tmp:
        (tmp / TASKS_FILE).write_text(json.dumps(tasks, indent=2, ensure_ascii=False), encoding="utf-8")
        (tmp / CONFIG_FILE).write_text(label_studio_config(), encoding="utf-8")
        (tmp / AUDIT_MANIFEST).write_text(json.dumps({**design, "sentences": len(rows)}, indent=2), encoding="utf-8")
        with (tmp / ROWS_CSV).open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(ROW_COLUMNS))
            writer.writeheader()
            writer.writerows(rows)
