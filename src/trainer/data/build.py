"""Build a labeled sentence `DatasetDict` from a data config: read -> clean/split -> label ->
split by article -> write atomically, with a dataset card and a content fingerprint.
"""

from __future__ import annotations

import csv
import hashlib
import importlib.metadata
import json
import logging
import os
import re
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from datasets import ClassLabel, Dataset, DatasetDict, Features, Sequence, Value, load_from_disk
from sklearn.model_selection import GroupShuffleSplit, StratifiedGroupKFold

from trainer.infra.atomic import atomic_folder
from trainer.config import SPLITS, DataConfig, SplitConfig, portable, to_plain
from trainer.data.rules import RuleLabeler, rules_path
from trainer.data.sources import Example, SourceResult, input_files, read_bytes, read_source
from trainer.data.sentences import InContext
from trainer.errors import DataError
from trainer.labels import LABELS
from trainer.infra.locks import output_lock

log = logging.getLogger(__name__)

# Skip reasons that a config setting asked for (exclude_articles, max_train_articles, a pseudo source's
# thresholds): logged as information. Anything else skipped or converted is a warning.
INTENDED_SKIPS = frozenset({"excluded_article", "train_articles_over_train_limit"})

# Bump when the dataset layout changes; changes to the data code itself are caught by _code_digest.
BUILDER_VERSION = "1"
CARD_JSON = "card.json"
CARD_MD = "README.md"

FEATURES = Features(
    {
        "text": Value("string"),
        "label": ClassLabel(names=list(LABELS)),
        "article": Value("string"),
        "sentence_index": Value("int32"),
        "label_source": Value("string"),
        "source": Value("string"),
        "beat": Value("string"),
        "rule_label": Value("string"),
        "rules_fired": Value("string"),
    }
)


# Columns a dataset has only where some source fills them, so that datasets without them keep their layout:
# the neighbouring sentences (readers that know the article) and a teacher's probabilities (kind: teacher).
CONTEXT_COLUMNS = {"before": "context_before", "after": "context_after"}
TEACHER_COLUMN = "teacher"


def dataset_features(examples: list[Example]) -> Features:
    """`FEATURES`, plus the context columns if any example knows its neighbours, plus the teacher column if
    any example carries a teacher's probabilities (gold sentences then hold an empty list)."""
    features = dict(FEATURES)
    if any(e.before or e.after for e in examples):
        features.update({column: Value("string") for column in CONTEXT_COLUMNS.values()})
    if any(e.teacher is not None for e in examples):
        features[TEACHER_COLUMN] = Sequence(Value("float32"))
    return Features(features)


def split_texts(split: Any) -> list[str]:
    """A built split's sentences (a `datasets.Dataset`), in order; where the dataset has the context columns,
    each is an `InContext` that carries its neighbours to a model that reads them (`model.context`)."""
    before, after = CONTEXT_COLUMNS["before"], CONTEXT_COLUMNS["after"]
    if before not in split.column_names:
        return list(split["text"])
    return [InContext(t, b, a) for t, b, a in zip(split["text"], split[before], split[after])]


def example_texts(examples: list[Example]) -> list[str]:
    """The examples' sentences, each an `InContext` where its reader knew the neighbours."""
    return [InContext(e.text, e.before, e.after) if e.before or e.after else e.text for e in examples]


def _row(example: Example, features: Features) -> dict[str, Any]:
    row = asdict(example)
    for field_name, column in CONTEXT_COLUMNS.items():
        row[column] = row[field_name]
    row[TEACHER_COLUMN] = row["teacher"] or []
    return {key: row[key] for key in features}


@dataclass
class BuiltDataset:
    """A built dataset and its card."""

    path: Path
    dataset: DatasetDict
    card: dict[str, Any]

    @property
    def fingerprint(self) -> str:
        return self.card["fingerprint"]


def _code_digest() -> str:
    """Digest of the data-processing code, so that a change in cleaning or splitting rebuilds."""
    digest = hashlib.sha256()
    for path in sorted(Path(__file__).parent.rglob("*.py")):  # the readers in sources/ too
        digest.update(path.read_bytes())
    digest.update(importlib.metadata.version("syntok").encode())
    return digest.hexdigest()


def fingerprint(config: DataConfig) -> str:
    """SHA-256 over the settings, the data code and every input file's name and bytes."""
    digest = hashlib.sha256()
    digest.update(_code_digest().encode())
    # paths as written relative to the project, so that the same data in another clone has the same print
    settings = portable(config, config.project)
    settings.pop("output_dir", None)
    digest.update(json.dumps({"settings": settings, "builder": BUILDER_VERSION}, sort_keys=True).encode())
    if config.drop_label_issues and not config.drop_label_issues.is_file():
        raise DataError(f"drop_label_issues: expected check-data's label-issues.csv at {config.drop_label_issues}, "
                        "found nothing; run trainer check-data --label-issues on the same data without this key first")
    extra = [config.drop_label_issues] if config.drop_label_issues else []
    for path in [p for source in config.sources for p in input_files(source)] + extra:
        digest.update(os.fsencode(os.path.relpath(path, config.project)))  # names that are not UTF-8 too
        digest.update(read_bytes(path))
    return digest.hexdigest()


def split_by_article(labels: list[str], groups: list[str], split: SplitConfig) -> dict[str, np.ndarray]:
    """Indices of train/validation/test: stratified by label, grouped by article, seeded.

    StratifiedGroupKFold peels off one fold as test (about `split.test` of the articles), then one
    fold of the rest as validation, so no article has sentences in two splits.
    """
    y = np.asarray(labels)
    g = np.asarray(groups)
    n_articles = len(set(groups))
    if n_articles < 3:
        raise DataError(f"expected at least 3 articles to make train/validation/test splits, found {n_articles}")

    def peel(indices: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
        # No more folds than articles, nor than the largest label has sentences (sklearn refuses that).
        largest = max(np.unique(y[indices], return_counts=True)[1])
        n_splits = max(2, min(round(1 / fraction), len(set(g[indices])), int(largest)))
        folds = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
        try:
            rest, held = next(folds.split(np.zeros(len(indices)), y[indices], g[indices]))
        except ValueError:  # too few sentences of each label to stratify (three one-sentence articles)
            n_groups = len(set(g[indices]))
            held_out = max(1, min(n_groups - 1, n_groups // n_splits))
            unstratified = GroupShuffleSplit(n_splits=1, test_size=held_out, random_state=seed)
            rest, held = next(unstratified.split(np.zeros(len(indices)), y[indices], g[indices]))
        return indices[rest], indices[held]

    everything = np.arange(len(y))
    rest, test = peel(everything, split.test, split.seed)
    train, validation = peel(rest, split.validation / (1 - split.test), split.seed + 1)
    return {"train": np.sort(train), "validation": np.sort(validation), "test": np.sort(test)}


def _limit_train(train: np.ndarray, articles: list[str], limit: int, seed: int) -> tuple[np.ndarray, int]:
    """Keep the sentences of `limit` train articles, drawn with the seed; return them and how many articles went."""
    names = sorted({articles[i] for i in train})
    if len(names) <= limit:
        return train, 0
    keep = set(np.random.default_rng(seed).choice(names, size=limit, replace=False).tolist())
    return np.array([i for i in train if articles[i] in keep], dtype=int), len(names) - limit


def dedup_key(text: str) -> str:
    """Normalised text under which near-duplicates collide: case, punctuation and spacing ignored."""
    return " ".join(re.sub(r"[^\w]+", " ", text.lower()).split())


def drop_cross_split_duplicates(
    examples: list[Example], indices: dict[str, np.ndarray]
) -> tuple[dict[str, np.ndarray], dict[str, int]]:
    """Remove from validation and test every sentence whose normalised text is in an earlier split.

    Article grouping keeps articles apart; this keeps repeated sentences (wire copy, boilerplate
    quotes) from leaking into the evaluation splits. Counts per split go to the card.
    """
    seen: set[str] = set()
    kept: dict[str, np.ndarray] = {}
    dropped: dict[str, int] = {}
    for name in SPLITS:
        keys = [dedup_key(examples[i].text) for i in indices[name]]
        if name == "train":
            keep = np.ones(len(keys), dtype=bool)
        else:
            keep = np.array([k not in seen for k in keys], dtype=bool)
        kept[name] = indices[name][keep] if len(keys) else indices[name]
        dropped[name] = int((~keep).sum()) if len(keys) else 0
        seen.update(keys)
    return kept, dropped


def split_sources(config: DataConfig, results: list[SourceResult]) -> dict[str, np.ndarray]:
    """Indices (into all sources' examples, in order) of each split.

    Each source is split on its own, with the same seed and fractions: adding a source to a config
    never moves another source's articles between splits, so figures stay comparable. A train-only
    source (pseudo labels) goes to train whole, less its sentences that another source labels and
    its articles that another source puts in validation or test, sampled down to its `max_sentences`.
    """
    indices = {name: np.array([], dtype=int) for name in SPLITS}
    offsets = np.cumsum([0] + [len(r.examples) for r in results])
    for source, result, offset in zip(config.sources, results, offsets):
        if source.train_only:
            continue
        articles = [e.article for e in result.examples]
        if len(set(articles)) < 3:
            log.warning("a source with %d article(s) goes to train whole: too few to split", len(set(articles)))
            everything = np.arange(len(articles))
            part = {"train": everything, "validation": everything[:0], "test": everything[:0]}
        else:
            part = split_by_article([e.label for e in result.examples], articles, config.split)
        if source.train_limit is not None:
            part["train"], unused = _limit_train(part["train"], articles, source.train_limit, config.split.seed)
            result.skipped["train_articles_over_train_limit"] += unused
        for name in SPLITS:
            indices[name] = np.concatenate([indices[name], part[name] + offset])
    gold = [e for source, r in zip(config.sources, results) if not source.train_only for e in r.examples]
    gold_texts = {dedup_key(e.text) for e in gold}
    everything = [e for r in results for e in r.examples]
    held_articles = {everything[i].article for name in ("validation", "test") for i in indices[name]}
    for source, result, offset in zip(config.sources, results, offsets):
        if not source.train_only:
            continue
        keep = []
        for i, example in enumerate(result.examples):
            if example.article in held_articles:
                result.skipped["pseudo_in_a_validation_or_test_article"] += 1
            elif dedup_key(example.text) in gold_texts:
                result.skipped["pseudo_sentence_labeled_by_another_source"] += 1
            else:
                keep.append(i + offset)
        limit = getattr(source, "max_sentences", None)
        if limit is not None and len(keep) > limit:
            result.skipped["pseudo_over_max_sentences"] += len(keep) - limit
            keep = sorted(np.random.default_rng(source.seed).choice(keep, limit, replace=False).tolist())
        indices["train"] = np.concatenate([indices["train"], np.array(keep, dtype=int)])
    return indices


def drop_label_issues(config: DataConfig, examples: list[Example], train: np.ndarray) -> tuple[np.ndarray, int]:
    """`train` less the sentences that `config.drop_label_issues` (check-data's ranked CSV) lists,
    matched by source and normalised text; and how many were dropped."""
    if config.drop_label_issues is None:
        return train, 0
    with config.drop_label_issues.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    if rows and not {"source", "text"} <= set(rows[0]):
        raise DataError(f"{config.drop_label_issues}: expected check-data's label-issues.csv with source and text "
                        f"columns, found {sorted(rows[0])}; point drop_label_issues at that file")
    rows = [row for row in rows if row.get("split", "train") == "train"]  # the ranking covers every split
    rows = rows[: config.max_label_issues] if config.max_label_issues else rows
    flagged = {(row["source"], dedup_key(row["text"])) for row in rows}
    keep = np.array([i for i in train if (examples[i].source, dedup_key(examples[i].text)) not in flagged], dtype=int)
    return keep, len(train) - len(keep)


def apply_rules(config: DataConfig, results: list[SourceResult]) -> None:
    """Record the rule label and fired rules of every example; unlabeled examples take the rule label."""
    for source, result in zip(config.sources, results):
        labeler = RuleLabeler.from_yaml(rules_path(source.rules))
        for example in result.examples:
            rule = labeler.label(example.text)
            example.rule_label = rule.label
            example.rules_fired = json.dumps(rule.fired)
            if example.label is None:
                example.label = rule.label


def _card(
    config: DataConfig, fp: str, results: list[SourceResult], dataset: DatasetDict, dropped: dict[str, int]
) -> dict[str, Any]:
    removed: Counter[str] = Counter()
    skipped: Counter[str] = Counter()
    for result in results:
        removed.update(result.removed)
        skipped.update(result.skipped)
    disagreements: Counter[str] = Counter()
    label_sources: Counter[str] = Counter()
    for split in dataset.values():
        names = split.features["label"].names
        for label, rule, origin in zip(split["label"], split["rule_label"], split["label_source"]):
            label_sources[origin] += 1
            if origin != "rule" and names[label] != rule:
                disagreements[f"{origin}:{names[label]}->rule:{rule}"] += 1
    counts = {
        name: dict(sorted(Counter(LABELS[i] for i in split["label"]).items(), key=lambda kv: LABELS.index(kv[0])))
        for name, split in dataset.items()
    }
    return {
        "name": config.name,
        "fingerprint": fp,
        "builder_version": BUILDER_VERSION,
        "config": to_plain(config),
        "labels": list(LABELS),
        "articles": {name: len(set(split["article"])) for name, split in dataset.items()},
        "sentences": {name: len(split) for name, split in dataset.items()},
        "label_counts": counts,
        "cleaning_removed": dict(removed),
        "skipped": dict(skipped),
        "duplicates_dropped_from_split": dropped,
        "label_sources": dict(label_sources),
        "rule_disagreements": dict(disagreements.most_common()),
        "unlabeled_sentences": [item for r in results for item in r.unlabeled],
        "unused_labels": [item for r in results for item in r.unused_labels],
        "agreement": {name: figures for r in results for name, figures in r.agreement.items()},
    }


def card_markdown(card: dict[str, Any]) -> str:
    rows = [
        f"| {name} | {card['articles'][name]} | {card['sentences'][name]} | "
        + " | ".join(str(card["label_counts"][name].get(label, 0)) for label in LABELS)
        + " |"
        for name in SPLITS
    ]
    removed = ", ".join(f"{k}: {v}" for k, v in sorted(card["cleaning_removed"].items())) or "nothing"
    return "\n".join(
        [
            f"# Dataset card: {card['name']}",
            "",
            f"Fingerprint: `{card['fingerprint']}`",
            "",
            "| split | articles | sentences | " + " | ".join(LABELS) + " |",
            "|---|---|---|" + "---|" * len(LABELS),
            *rows,
            "",
            f"Cleaning removed: {removed}.",
            f"Skipped: {', '.join(f'{k}: {v}' for k, v in sorted(card['skipped'].items())) or 'nothing'}.",
            "Sentences dropped from validation/test as duplicates of an earlier split: "
            f"{card['duplicates_dropped_from_split']['validation']} / {card['duplicates_dropped_from_split']['test']}.",
            *([f"Suspected label issues dropped from train ({card['label_issues_dropped_from_train']['file']}): "
               f"{card['label_issues_dropped_from_train']['sentences']}."] if card.get("label_issues_dropped_from_train") else []),
            f"Label sources: {', '.join(f'{k}: {v}' for k, v in sorted(card['label_sources'].items()))}.",
            f"Sentences where the label and the rules disagree: {sum(card['rule_disagreements'].values())}.",
            f"Sentences without a gold label (not in the dataset): {len(card['unlabeled_sentences'])}.",
            f"Gold labels that matched no sentence: {len(card['unused_labels'])}.",
            *_agreement_lines(card.get("agreement", {})),
            *([f"Suspected label issues (check-data --label-issues) per source: "
               f"{', '.join(f'{k}: {v}' for k, v in sorted(card['label_issues']['per_source'].items())) or 'none'} "
               f"of {card['label_issues']['sentences']} sentences."] if card.get("label_issues") else []),
            "",
            "Splits are grouped by article (no article in two splits) and stratified by label.",
            "",
        ]
    )


def _agreement_lines(agreement: dict[str, Any]) -> list[str]:
    """The card's agreement section: kappa overall and per label, and how disagreements were resolved."""
    lines = []
    for source, figures in agreement.items():
        if figures.get("method") is None:
            lines.append(f"Agreement ({source}): no task has more than one annotator.")
            continue
        name = "Cohen's kappa" if figures["method"] == "cohen" else "Fleiss' kappa"
        per_label = ", ".join(f"{label} {value:.3f}" for label, value in figures["per_label"].items())
        resolved = ", ".join(f"{k}: {v}" for k, v in sorted(figures.get("resolved", {}).items()))
        lines.append(f"Agreement ({source}): {name} {figures['overall']:.3f} over {figures['items']} tasks labeled "
                     f"by {', '.join(figures['annotators'])}; per label: {per_label}. "
                     f"Resolved by {figures.get('rule')}: {resolved}.")
    return lines


def _write_atomically(dataset: DatasetDict, card: dict[str, Any], target: Path) -> None:
    """Write the dataset and its card, load it back, and only then rename it into place."""
    _check_splits(card)
    with atomic_folder(target) as tmp:
        dataset.save_to_disk(str(tmp))
        (tmp / CARD_JSON).write_text(json.dumps(card, indent=2, ensure_ascii=False), encoding="utf-8")
        (tmp / CARD_MD).write_text(card_markdown(card), encoding="utf-8")
        loaded = _load_splits(tmp, f"data config '{card['name']}': the dataset written")
        found = {name: len(part) for name, part in loaded.items()}
        if found != card["sentences"]:
            raise DataError(f"data config '{card['name']}': expected the dataset written to load back with "
                            f"{card['sentences']} sentences, found {found}; nothing was replaced (a bug: report it)")


def _check_splits(card: dict[str, Any]) -> None:
    """Refuse a dataset with an empty split (it could not be loaded back, nor trained and tested on)."""
    empty = [name for name in SPLITS if not card["sentences"][name]]
    if not empty:
        return
    dropped = card["duplicates_dropped_from_split"]
    if all(dropped.get(name) for name in empty):
        why = (f"every sentence of its articles repeats a sentence of an earlier split "
               f"({', '.join(f'{dropped[n]} dropped from {n}' for n in empty)}); add articles of their own text")
    else:
        why = (f"{sum(card['articles'].values())} article(s) in all, and a source needs at least 3 to be split "
               "(smaller ones go to train whole); add articles, or merge the small sources into one")
    raise DataError(f"data config '{card['name']}': expected sentences in train, validation and test, "
                    f"found none in {' and '.join(empty)}: {why}")


def _load_splits(path: Path, what: str) -> DatasetDict:
    """`load_from_disk`, with a DataError saying why when the folder does not load."""
    try:
        return load_from_disk(str(path))
    except Exception as exc:  # noqa: BLE001 - datasets raises IndexError, FileNotFoundError, ... for broken folders
        raise DataError(f"{what}: expected a dataset that loads, found {type(exc).__name__}: {exc}; "
                        "rebuild it with `trainer build-data --config ... --force`") from None


def load_built(path: Path) -> BuiltDataset:
    """Load a dataset folder written by `build_dataset`."""
    card_path = path / CARD_JSON
    if not card_path.is_file():
        raise DataError(f"{path}: expected a built dataset (with {CARD_JSON}), found none; run `trainer build-data`")
    card = json.loads(card_path.read_text(encoding="utf-8"))
    return BuiltDataset(path, _load_splits(path, str(path)), card)


def build_dataset(config: DataConfig, force: bool = False, progress: bool = True, wait: bool = True) -> BuiltDataset:
    """Build (or reuse, if the fingerprint matches) the dataset described by `config`.

    One process builds a dataset at a time (`.locks/NAME.lock` beside it): with `wait`, another build of
    it is waited for and its result reused; without, a BusyError says who holds it. A build that
    would not load back (an empty split) is refused with the reason, and nothing is replaced.

    >>> built = build_dataset(load_data_config("configs/data/bundled.yaml"))  # doctest: +SKIP
    >>> built.dataset["train"][0]["text"]  # doctest: +SKIP
    """
    fp = fingerprint(config)
    target = config.dataset_dir
    existing = None if force else _up_to_date(target, fp)
    if existing is not None:
        return existing
    with output_lock(target, f"dataset '{config.name}'", "build of it", wait=wait):
        existing = None if force else _up_to_date(target, fp)  # built by the process we waited for
        return existing or _build(config, fp, target, progress)


def _up_to_date(target: Path, fp: str) -> BuiltDataset | None:
    """The dataset at `target` if it was built from the same inputs and loads; else None (rebuild it)."""
    if not (target / CARD_JSON).is_file():
        return None
    try:
        existing = load_built(target)
    except DataError as error:
        log.warning("%s; rebuilding it", error)
        return None
    if existing.fingerprint != fp:
        return None
    log.info("dataset %s is up to date (fingerprint %s)", target, fp[:12])
    return existing


def _build(config: DataConfig, fp: str, target: Path, progress: bool) -> BuiltDataset:
    results = [read_source(source, num_proc=config.num_proc, progress=progress) for source in config.sources]
    apply_rules(config, results)
    examples: list[Example] = [ex for r in results for ex in r.examples]
    if not examples:
        raise DataError(f"data config '{config.name}': expected labeled sentences, found none in its sources")
    for result in results:
        if result.unlabeled:
            log.warning("%d sentences have no gold label and are left out (listed in the card)", len(result.unlabeled))
        if result.unused_labels:
            log.warning("%d gold labels matched no sentence (listed in the card)", len(result.unused_labels))
        for reason, count in sorted(result.skipped.items()):
            # what the config asked to leave out is news, not a warning; the rest may need a look
            level = logging.INFO if reason in INTENDED_SKIPS or reason.startswith("pseudo_") else logging.WARNING
            log.log(level, "skipped or converted: %s: %d (counted in the card)", reason, count)

    indices = split_sources(config, results)
    indices, dropped = drop_cross_split_duplicates(examples, indices)
    indices["train"], issues_dropped = drop_label_issues(config, examples, indices["train"])
    features = dataset_features(examples)
    rows = [_row(e, features) for e in examples]
    dataset = DatasetDict(
        {
            name: Dataset.from_dict({key: [rows[i][key] for i in idx] for key in features}, features=features)
            for name, idx in indices.items()
        }
    )
    card = _card(config, fp, results, dataset, dropped)
    if config.drop_label_issues:
        card["label_issues_dropped_from_train"] = {"file": str(config.drop_label_issues), "sentences": issues_dropped}
    _write_atomically(dataset, card, target)
    counts = ", ".join(f"{n:,} {split}" for split, n in card["sentences"].items())
    log.info("wrote %s: %s sentences, fingerprint %s", target, counts, fp[:12])
    return load_built(target)
