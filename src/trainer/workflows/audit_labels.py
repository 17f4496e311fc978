"""The hand labels of an audit, read back and joined to the tag output's sentences.

An audit file is a Label Studio JSON export of `trainer audit`'s tasks, or a CSV/JSONL with
`article_id` and `label` and the sentence's place: `start` and `end`, or `sentence_index`, or its
`text`. Rows without a label are left out (counted). `inclusion_probability`, when present (the
audit's tasks and CSV carry it), weights each sentence by its inverse; without it the audit is taken
as a simple random sample.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from trainer.errors import DataError
from trainer.labels import LABELS

KEYS = (("start", "end"), ("sentence_index",), ("text",))


def _from_labelstudio(path: Path) -> Any:
    import pandas as pd

    from trainer.config import LabelStudioSource
    from trainer.data.labelstudio import read_labelstudio

    result = read_labelstudio(LabelStudioSource(path=path, resolve="majority"), progress=False)
    design = {}
    for task in json.loads(path.read_text(encoding="utf-8")):
        meta = (task.get("data") or {}).get("meta") or {}
        if "article" in meta and "sentence_index" in meta:
            design[(str(meta["article"]), int(meta["sentence_index"]))] = meta.get("inclusion_probability")
    rows = [{"article_id": e.article, "sentence_index": e.sentence_index, "label": e.label,
             "inclusion_probability": design.get((e.article, e.sentence_index))} for e in result.examples]
    frame = pd.DataFrame(rows, columns=["article_id", "sentence_index", "label", "inclusion_probability"])
    frame.attrs["skipped"] = dict(result.skipped)
    return frame


def read_audit(path: Path) -> Any:
    """The audit's labeled sentences as a frame: `article_id`, a key (offsets, index or text), `label`, and
    `inclusion_probability` where known."""
    import pandas as pd

    if not path.is_file():
        raise DataError(f"--audit: expected a Label Studio export (JSON) or a CSV/JSONL of labels, found nothing "
                        f"at {path}")
    suffix = path.suffix.lower()
    if suffix == ".json":
        return _from_labelstudio(path)
    if suffix not in (".csv", ".jsonl"):
        raise DataError(f"--audit {path}: expected a .json (Label Studio export), .csv or .jsonl file, "
                        f"found {suffix!r}")
    frame = pd.read_json(path, lines=True, dtype=False) if suffix == ".jsonl" else pd.read_csv(path, dtype=str,
                                                                                                keep_default_na=False)
    missing = [c for c in ("article_id", "label") if c not in frame.columns]
    if missing or not any(all(c in frame.columns for c in key) for key in KEYS):
        raise DataError(f"--audit {path}: expected columns article_id, label and start+end (or sentence_index, or "
                        f"text), found {list(frame.columns)}")
    labeled = frame["label"].astype(str).str.strip() != ""
    frame = frame[labeled].copy()
    frame.attrs["skipped"] = {"unlabeled_rows": int((~labeled).sum())} if (~labeled).any() else {}
    return frame


def join_audit(frame: Any, sentences: Any) -> tuple[Any, dict[str, Any]]:
    """The audited sentences of the tag output with their hand label (`gold`) and weight; and a
    description of the audit (sentences, labels, design)."""
    import pandas as pd

    bad = sorted(set(frame["label"].astype(str)) - set(LABELS))
    if bad:
        raise DataError(f"--audit: expected labels in {list(LABELS)}, found {bad}; fix the labels or the "
                        "labeling config")
    if not len(frame):
        raise DataError("--audit: expected labeled sentences, found none (is the label column filled in?)")
    key = next(list(k) for k in KEYS if all(c in frame.columns for c in k))
    left = frame.assign(article_id=frame["article_id"].astype(str))
    right = sentences.assign(article_id=sentences["article_id"].astype(str))
    for column in key:
        cast = str if column == "text" else int
        left[column], right[column] = left[column].map(cast), right[column].map(cast)
    joined = left.rename(columns={"label": "gold"}).merge(right, on=["article_id", *key], how="left",
                                                          suffixes=("_audit", ""), indicator=True)
    unmatched = joined[joined["_merge"] != "both"]
    if len(unmatched):
        first = unmatched.iloc[0]
        raise DataError(f"--audit: expected every audited sentence in the tag output, found {len(unmatched)} that are "
                        f"not (first: article {first['article_id']!r} at {[first[c] for c in key]}); audit the same "
                        "tag output you summarize")
    probability = pd.to_numeric(joined.get("inclusion_probability"), errors="coerce") if (
        "inclusion_probability" in joined.columns) else pd.Series(1.0, index=joined.index)
    weighted = bool(probability.notna().all() and probability.nunique() > 1)
    joined["weight"] = (1.0 / probability) if weighted else 1.0
    info = {"sentences": len(joined), "labels": {k: int((joined["gold"] == k).sum()) for k in LABELS},
            "weighted": weighted, "key": key, "skipped": dict(frame.attrs.get("skipped", {})),
            "design": "stratified (weighted by 1 / inclusion probability)" if weighted else "simple random sample"}
    return joined.drop(columns=["_merge"]), info
