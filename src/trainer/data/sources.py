"""Readers that turn each kind of input into labeled (or rule-labeled) sentence examples.

Every reader returns a `SourceResult`: the examples, what cleaning removed, and anything it skipped
or could not match (reported in the dataset card, never dropped silently). Examples without a label
(raw article folders) get one from the rules in `build.py`.
"""

from __future__ import annotations

import csv
import functools
import json
import logging
import multiprocessing
import re
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import regex

from trainer.config import (
    BratSource,
    CorpusSource,
    FolderSource,
    HuggingFaceSource,
    LabeledRowsSource,
    LabeledSource,
    SourceConfig,
)
from trainer.data.cleaning import clean_article
from trainer.data.rules import RuleLabeler, UserPattern, rules_path
from trainer.data.sentences import Sentence, article_sentences, normalize, sentence_spans
from trainer.errors import ConfigError, DataError
from trainer.labels import LABELS, check_labels
from trainer.infra.progress import bar
from trainer.registry import SOURCES

log = logging.getLogger(__name__)

TEXT_SUFFIXES = (".txt", ".md")
HTML_SUFFIXES = (".html", ".htm")
TABLE_SUFFIXES = (".jsonl", ".csv", ".parquet")


@dataclass
class Example:
    """One sentence, its label (None until rules label it) and where both came from."""

    text: str
    label: str | None
    article: str
    sentence_index: int
    label_source: str
    source: str
    beat: str = ""
    rule_label: str = ""
    rules_fired: str = ""
    meta: dict[str, str] = field(default_factory=dict)  # a labeled file's other columns, when asked for


@dataclass
class SourceResult:
    examples: list[Example] = field(default_factory=list)
    removed: Counter[str] = field(default_factory=Counter)
    skipped: Counter[str] = field(default_factory=Counter)
    unlabeled: list[dict[str, Any]] = field(default_factory=list)
    unused_labels: list[dict[str, Any]] = field(default_factory=list)
    articles: int = 0
    agreement: dict[str, Any] = field(default_factory=dict)  # per source, where several annotators labeled

    def add(self, other: SourceResult) -> None:
        self.examples.extend(other.examples)
        self.removed.update(other.removed)
        self.skipped.update(other.skipped)
        self.unlabeled.extend(other.unlabeled)
        self.unused_labels.extend(other.unused_labels)
        self.articles += other.articles
        self.agreement.update(other.agreement)


# ---------------------------------------------------------------- file helpers


def read_text(path: Path) -> str:
    """Read a UTF-8 text file (a byte-order mark dropped), with a DataError for undecodable bytes or a
    file that cannot be read."""
    return decode_text(read_bytes(path), path, "error", SourceResult())


def read_bytes(path: Path) -> bytes:
    """A file's bytes, with a DataError naming a file that cannot be read (a link to nothing, no permission)."""
    try:
        return path.read_bytes()
    except OSError as exc:
        found = "a link to nothing" if path.is_symlink() and not path.exists() else exc.strerror or type(exc).__name__
        raise DataError(f"{path}: expected a readable file, found {found}; fix or remove it") from None


def decode_text(data: bytes, path: Path, on_bad_encoding: str, result: SourceResult) -> str:
    """UTF-8 bytes as text, without a leading byte-order mark. Bytes that are not UTF-8 are a DataError,
    or with `on_bad_encoding: replace` become U+FFFD, counted as `decoded_with_replacement` and logged."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        if on_bad_encoding == "error":
            raise DataError(
                f"{path}: expected UTF-8 text, found an undecodable byte at offset {exc.start}; re-save the file "
                "as UTF-8, or set on_bad_encoding: replace in the source"
            ) from None
        text = data.decode("utf-8", errors="replace")
        result.skipped["decoded_with_replacement"] += 1
        log.warning("%s: not UTF-8; decoded with replacement characters", path)
    return text.removeprefix("\ufeff")  # a BOM (Windows editors) is not part of the first sentence or header


_HTML = re.compile(r"<\s*(html|body|p|div|br|span|article)\b[^>]*>", re.IGNORECASE)


def read_article(path: Path, source: SourceConfig, result: SourceResult) -> str:
    """An article's text: UTF-8 (or decoded with replacement, by setting), HTML turned into text.

    Each fallback is counted in `result.skipped` (and so in the card) and logged.
    """
    return decode_article(read_bytes(path), path, source.on_bad_encoding, result)


def decode_article(data: bytes, path: Path, on_bad_encoding: str, result: SourceResult) -> str:
    """`read_article` on bytes already read (a Spark executor gets the file's bytes, not the file)."""
    text = decode_text(data, path, on_bad_encoding, result)
    # Path.read_text's universal newlines, so that offsets are the same as for a file read as text
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if path.suffix.lower() not in HTML_SUFFIXES and len(_HTML.findall(text)) >= 2:
        result.skipped["html_in_text_file_converted"] += 1
        log.warning("%s: HTML where plain text was expected; extracted its text", path)
        text = html_to_text(text)
    return text


def read_jsonl(path: Path, text: str | None = None) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield (line number, object) for each non-blank line (of `text`, when the file is read already);
    DataError names the bad line."""
    for number, line in enumerate((read_text(path) if text is None else text).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}:{number}: expected a JSON object per line, found invalid JSON ({exc.msg})") from None
        if not isinstance(obj, dict):
            raise DataError(f"{path}:{number}: expected a JSON object per line, found {type(obj).__name__}")
        yield number, obj


def read_table(
    path: Path, on_bad_encoding: str = "error", result: SourceResult | None = None
) -> Iterator[tuple[str, dict[str, Any]]]:
    """Rows of a JSONL, CSV or Parquet file as (where, row), `where` naming file and line (or row).
    JSONL and CSV are decoded as `decode_text` does (`on_bad_encoding`, counted in `result`)."""
    if path.suffix.lower() == ".parquet":
        import pyarrow.parquet as pq

        try:
            rows = pq.read_table(path).to_pylist()
        except (OSError, ValueError) as exc:
            raise DataError(f"{path}: expected a Parquet file, found one that cannot be read ({exc})") from None
        for number, row in enumerate(rows, start=1):
            yield f"{path}:row {number}", row
        return
    text = decode_text(read_bytes(path), path, on_bad_encoding, result if result is not None else SourceResult())
    if path.suffix.lower() == ".csv":
        try:
            for number, row in enumerate(csv.DictReader(text.splitlines()), start=2):
                if None in row:  # more fields than the header names
                    raise DataError(f"{path}:{number}: expected {len(row) - 1} fields as in the header, found more "
                                    "(quote fields that hold commas)")
                yield f"{path}:{number}", row
        except csv.Error as exc:
            raise DataError(f"{path}: expected CSV, found {exc}") from None
    else:
        for number, row in read_jsonl(path, text):
            yield f"{path}:{number}", row


def _column(row: dict[str, Any], column: str, where: str) -> Any:
    if column not in row:
        raise DataError(f"{where}: expected a '{column}' column, found {sorted(map(str, row))} (set the column name "
                        "in the config)")
    return row[column]


def _text_value(value: Any, column: str, where: str) -> str:
    """A text cell: a string (null is empty); numbers or lists in a text column are a mistake."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise DataError(f"{where}: expected text in the '{column}' column, found {type(value).__name__} ({value!r:.40})")
    return value


def _id_value(row: dict[str, Any], column: str, where: str) -> str:
    value = _column(row, column, where)
    if value is None or (isinstance(value, str) and not value.strip()):
        raise DataError(f"{where}: expected an article id in the '{column}' column, found {json.dumps(value)}")
    return str(value)


def _map_label(raw: Any, label_map: dict[str, str], where: str) -> str:
    label = label_map.get(str(raw), str(raw))
    check_labels([label], where)
    return label


def read_exclusions(path: Path | None) -> set[str]:
    if path is None:
        return set()
    return {line.strip() for line in read_text(path).splitlines() if line.strip() and not line.startswith("#")}


def html_to_text(html: str) -> str:
    """Story text of an HTML page: headings, paragraphs and list items, one per line (BeautifulSoup)."""
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(html, "html.parser")
    for tag in soup(["script", "style", "nav", "header", "footer", "aside", "form", "noscript", "figure"]):
        tag.decompose()
    blocks = [el.get_text(" ", strip=True) for el in soup.find_all(["h1", "h2", "h3", "p", "li", "blockquote"])]
    blocks = [b for b in blocks if b]
    return "\n\n".join(blocks) if blocks else soup.get_text("\n", strip=True)


def _map(func: Callable[[Any], SourceResult], items: list[Any], num_proc: int, desc: str, progress: bool) -> SourceResult:
    """Apply `func` to every item (in worker processes when num_proc > 1), merging results in order."""
    result = SourceResult()
    progress_bar = bar(total=len(items), desc=desc, unit="article", disable=not progress)
    if num_proc > 1 and len(items) > 1:
        # spawn, not fork: a fork taken while other threads (torch, tqdm) hold locks can deadlock the child
        with ProcessPoolExecutor(max_workers=num_proc, mp_context=multiprocessing.get_context("spawn")) as pool:
            for part in pool.map(func, items, chunksize=max(1, len(items) // (num_proc * 8))):
                result.add(part)
                progress_bar.update()
    else:
        for item in items:
            result.add(func(item))
            progress_bar.update()
    progress_bar.close()
    return result


# ---------------------------------------------------------------- corpus (gold labels)


def read_corpus(source: CorpusSource, num_proc: int = 1, progress: bool = True) -> SourceResult:
    """Read a folder of articles and join the gold labels by (article, normalised sentence)."""
    gold: dict[tuple[str, str], str] = {}
    for number, obj in read_jsonl(source.labels):
        where = f"{source.labels}:{number}"
        for key in ("article", "sentence", "label"):
            _column(obj, key, where)
        check_labels([obj["label"]], where)
        gold[(obj["article"], normalize(obj["sentence"]))] = obj["label"]

    beats: dict[str, str] = {}
    if source.metadata is not None:
        for number, obj in read_jsonl(source.metadata):
            beats[_column(obj, "article", f"{source.metadata}:{number}")] = str(obj.get("beat", ""))

    excluded = read_exclusions(source.exclude_articles)
    files = sorted(source.articles.glob("*.txt"))
    if not files:
        raise DataError(f"{source.articles}: expected .txt articles in this folder, found none")

    result = SourceResult()
    used: set[tuple[str, str]] = set()
    for path in bar(files, desc=f"reading {source.articles}", unit="article", disable=not progress):
        article = path.stem
        if article in excluded:
            result.skipped["excluded_article"] += 1
            continue
        text = read_article(path, source, result)
        if not text.strip():
            raise DataError(f"{path}: article is empty; expected news text (remove the file or fill it)")
        cleaned = clean_article(text)
        result.removed.update(cleaned.removed)
        result.articles += 1
        for index, sentence in enumerate(article_sentences(cleaned.paragraphs)):
            key = (article, sentence)
            label = gold.get(key)
            if label is None:
                result.unlabeled.append({"article": article, "sentence_index": index, "text": sentence})
                continue
            used.add(key)
            result.examples.append(
                Example(sentence, label, article, index, "gold", f"corpus:{source.articles}", beats.get(article, ""))
            )
    result.unused_labels = [
        {"article": a, "sentence": s} for (a, s) in gold if (a, s) not in used and a not in excluded
    ]
    return result


# ---------------------------------------------------------------- raw article folders


def folder_documents(source: FolderSource, result: SourceResult) -> list[tuple[str, str, str]]:
    """(article id, raw text, where) for every document in the folder."""
    documents: list[tuple[str, str, str]] = []
    paths = (sorted(p for p in source.path.rglob("*") if p.is_file() or p.is_symlink()) if source.path.is_dir()
             else [source.path])
    for path in paths:
        suffix = path.suffix.lower()
        if not path.exists():
            result.skipped["dangling_link"] += 1
            log.warning("%s: a link to nothing; skipped", path)
            continue
        if suffix in TEXT_SUFFIXES:
            documents.append((path.stem, read_article(path, source, result), str(path)))
        elif suffix in HTML_SUFFIXES:
            documents.append((path.stem, html_to_text(read_article(path, source, result)), str(path)))
        elif suffix in TABLE_SUFFIXES:
            for number, (where, row) in enumerate(read_table(path, source.on_bad_encoding, result)):
                text = _text_value(_column(row, source.text_column, where), source.text_column, where)
                article = _id_value(row, source.id_column, where) if source.id_column else f"{path.stem}-{number}"
                documents.append((article, text, where))
    if not documents:
        raise DataError(
            f"{source.path}: expected articles (.txt, .md, .html, or .jsonl/.csv with a "
            f"'{source.text_column}' column), found none"
        )
    return documents


def read_folder(source: FolderSource, num_proc: int = 1, progress: bool = True) -> SourceResult:
    """Raw articles, cleaned and split; labels come from the rules (in build)."""
    excluded = read_exclusions(source.exclude_articles)
    result = SourceResult()
    seen: set[str] = set()
    documents = folder_documents(source, result)
    for article, text, where in bar(documents, desc=f"reading {source.path}", disable=not progress):
        if article in excluded:
            result.skipped["excluded_article"] += 1
            continue
        if article in seen:
            raise DataError(f"{where}: article id '{article}' appears twice; expected unique ids")
        seen.add(article)
        if not text.strip():
            result.skipped["empty_article"] += 1
            continue
        sentences, removed = sentence_spans(text)
        result.removed.update(removed)
        result.articles += 1
        result.examples.extend(
            Example(s.text, None, article, i, "rule", f"folder:{source.path}") for i, s in enumerate(sentences)
        )
    return result


# ---------------------------------------------------------------- brat standoff (PolNeAR)


_BRAT_ID = re.compile(r"^([TERAMN]\d+|#\d*|\*)$")


@dataclass(frozen=True)
class _Attribution:
    cue: str
    content: tuple[tuple[int, int], ...]
    cue_spans: tuple[tuple[int, int], ...] = ()


def parse_brat(text: str, where: str) -> tuple[list[_Attribution], list[tuple[int, int]]]:
    """Attributions (cue text, content spans) and Discard spans from a brat .ann file."""
    spans: dict[str, tuple[str, tuple[tuple[int, int], ...], str]] = {}
    events: list[dict[str, str]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split("\t")
        if not _BRAT_ID.match(parts[0]):
            continue  # the rest of a span text that itself contains a line break
        try:
            if parts[0].startswith("T"):
                kind, _, ranges = parts[1].partition(" ")
                offsets = tuple(tuple(int(x) for x in r.split()) for r in ranges.split(";"))
                spans[parts[0]] = (kind, offsets, parts[2] if len(parts) > 2 else "")  # type: ignore[assignment]
            elif parts[0].startswith("E"):
                events.append(dict(arg.split(":", 1) for arg in parts[1].split()))
        except (IndexError, ValueError):
            raise DataError(f"{where}:{number}: expected a brat standoff line, found {line[:60]!r}") from None
    attributions = []
    for event in events:
        cue = spans.get(event.get("Cue", ""))
        content = spans.get(event.get("Content", ""))
        if cue is None or content is None:
            continue
        attributions.append(_Attribution(cue[2], content[1], cue[1]))
    discard = [offset for kind, offsets, _ in spans.values() if kind == "Discard" for offset in offsets]
    return attributions, discard  # type: ignore[return-value]


@functools.lru_cache(maxsize=4)
def _labeler(path: str) -> RuleLabeler:
    return RuleLabeler.from_yaml(path)


def _overlap(sentence: Sentence, spans: tuple[tuple[int, int], ...]) -> int:
    return sum(max(0, min(sentence.end, b) - max(sentence.start, a)) for a, b in spans)


@functools.lru_cache(maxsize=16)
def _cue_patterns(patterns: tuple[str, ...], where: str) -> list[UserPattern]:
    # A cue counts by its last word ("has said", "also told"), optionally with one word before.
    return [UserPattern(rf"^\W*(?:[\w']+\s+)*(?:{p})\W*$", where, regex.IGNORECASE, shown=p) for p in patterns]


def _counts(cue: str, source: BratSource, labeler: RuleLabeler) -> bool:
    """Does an annotated cue relay a claim? Vetoed cues never; beliefs only if the setting says so."""
    if any(p.match(cue) for p in _cue_patterns(tuple(source.excluded_cues), "brat source: excluded_cues")):
        return False
    if labeler.is_belief_cue(cue):
        return source.count_beliefs
    return labeler.counts_as_claim_cue(cue) or any(
        p.match(cue) for p in _cue_patterns(tuple(source.extra_claim_cues), "brat source: extra_claim_cues"))


def _relays(sentence: Sentence, attribution: _Attribution, length: int, min_share: float) -> bool:
    """The attribution's content covers enough of the sentence, or its cue is in the sentence and
    its (short) content lies within it: '"The bullying," Wallace said.'"""
    inside = _overlap(sentence, attribution.content)
    if inside / length >= min_share:
        return True
    content_length = sum(b - a for a, b in attribution.content) or 1
    return _overlap(sentence, attribution.cue_spans) > 0 and inside / content_length >= 0.8 and inside / length >= min_share / 2


def _brat_article(job: tuple[BratSource, str, Path, Path]) -> SourceResult:
    source, article, text_path, ann_path = job
    labeler = _labeler(str(rules_path(source.rules)))
    result = SourceResult(articles=1)
    text = read_article(text_path, source, result)
    attributions, discard = parse_brat(read_text(ann_path), str(ann_path))
    counted = [a for a in attributions if _counts(a.cue, source, labeler)]
    sentences, removed = sentence_spans(text, skip=discard)
    result.removed.update(removed)
    for index, sentence in enumerate(sentences):
        length = max(1, sentence.end - sentence.start)
        attributed = any(_relays(sentence, a, length, source.min_content_share) for a in counted)
        label, label_source = ("attributed" if attributed else "verified"), "annotation"
        if source.unverified_rules:
            rule = labeler.label(sentence.text)
            if rule.label == "unverified":
                label, label_source = "unverified", "annotation+rule"
        result.examples.append(Example(sentence.text, label, article, index, label_source, f"brat:{source.path}"))
    return result


def read_brat(source: BratSource, num_proc: int = 1, progress: bool = True) -> SourceResult:
    """Sentences of a brat corpus labeled from its attribution annotations (first annotator by name)."""
    text_dir, ann_dir = source.path / source.text_dir, source.path / source.annotation_dir
    for folder in (text_dir, ann_dir):
        if not folder.is_dir():
            raise DataError(f"{source.path}: expected a '{folder.name}' folder in the brat corpus, found none")
    annotations: dict[str, list[Path]] = {}
    for ann in sorted(ann_dir.glob("*.ann")):
        article = ann.stem.rsplit("_", 1)[0]
        annotations.setdefault(article, []).append(ann)
    excluded = read_exclusions(source.exclude_articles)
    only = read_exclusions(source.only_articles) if source.only_articles else None
    result = SourceResult()
    jobs = []
    for text_path in sorted(text_dir.glob("*.txt")):
        article = text_path.stem
        if article in excluded:
            result.skipped["excluded_article"] += 1
        elif only is not None and article not in only:
            continue  # not asked for: not counted as skipped
        elif article not in annotations:
            result.skipped["article_without_annotations"] += 1
        else:
            jobs.append((source, article, text_path, annotations[article][0]))  # first annotator by name
    if source.limit is not None:
        jobs = jobs[: source.limit]
    if not jobs:
        raise DataError(f"{text_dir}: expected annotated .txt articles, found none")
    result.add(_map(_brat_article, jobs, num_proc, f"reading {source.path}", progress))
    return result


# ---------------------------------------------------------------- labeled files and HF datasets


def labeled_examples(
    rows: Iterator[tuple[str, dict[str, Any]]],
    source: LabeledRowsSource,
    source_name: str,
    keep_meta: bool = False,
) -> SourceResult:
    """Labeled rows to examples (`keep_meta`: other columns kept on each); rows of `exclude_articles`'
    articles are left out."""
    result = SourceResult()
    counters: Counter[str] = Counter()
    excluded, left_out = read_exclusions(source.exclude_articles), set()
    used = {source.text_column, source.label_column, source.article_column}
    for number, (where, row) in enumerate(rows):
        article = _id_value(row, source.article_column, where) if source.article_column else f"{source_name}#{number}"
        if article in excluded:
            left_out.add(article)
            continue
        text = normalize(_text_value(_column(row, source.text_column, where), source.text_column, where))
        label = _map_label(_column(row, source.label_column, where), source.label_map, where)
        if not text:
            result.skipped["empty_text"] += 1
            continue
        meta = {k: str(v) for k, v in row.items() if k not in used} if keep_meta else {}
        result.examples.append(Example(text, label, article, counters[article], "gold", source_name, meta=meta))
        counters[article] += 1
    result.articles = len(counters)
    if left_out:
        result.skipped["excluded_article"] += len(left_out)
    return result


def read_labeled(source: LabeledSource, num_proc: int = 1, progress: bool = True) -> SourceResult:
    """Labeled sentences from JSONL/CSV, with a label-name mapping."""
    encoding = SourceResult()
    result = labeled_examples(read_table(source.path, source.on_bad_encoding, encoding), source, f"labeled:{source.path}")
    result.skipped.update(encoding.skipped)
    return result


def read_huggingface(source: HuggingFaceSource, num_proc: int = 1, progress: bool = True) -> SourceResult:
    """Labeled sentences from `datasets.load_dataset`; integer labels are read through its ClassLabel names."""
    from datasets import load_dataset

    try:
        dataset = load_dataset(source.path, data_files=source.data_files, split=source.split)
    except Exception as exc:  # noqa: BLE001 - the library raises many kinds; the user needs one line
        raise DataError(f"huggingface source {source.path!r}: could not load ({type(exc).__name__}: {exc})") from None
    feature = dataset.features.get(source.label_column)
    names = getattr(feature, "names", None)

    def rows() -> Iterator[tuple[str, dict[str, Any]]]:
        for number, row in enumerate(dataset):
            if names is not None and isinstance(row.get(source.label_column), int):
                row = {**row, source.label_column: names[row[source.label_column]]}
            yield f"{source.path}[{number}]", row

    return labeled_examples(rows(), source, f"hf:{source.path}")


def article_folder(source: Any) -> Path:
    """The folder of article files behind a data config's source."""
    if source.kind == "corpus":
        return source.articles
    if source.kind == "brat":
        return source.path / source.text_dir
    if source.kind == "folder":
        return source.path
    raise ConfigError(f"expected sources of articles (corpus, folder, brat), found a {source.kind!r} source, "
                      "whose sentences are labeled already")


# ---------------------------------------------------------------- what each kind reads, for the fingerprint


def corpus_files(source: CorpusSource) -> list[Path]:
    return sorted(source.articles.glob("*.txt")) + [source.labels] + ([source.metadata] if source.metadata else [])


def brat_files(source: BratSource) -> list[Path]:
    listed = [source.only_articles] if source.only_articles else []
    return listed + sorted((source.path / source.text_dir).glob("*.txt")) + sorted(
        (source.path / source.annotation_dir).glob("*.ann")
    )


def folder_files(source: FolderSource | LabeledSource) -> list[Path]:
    return sorted(p for p in source.path.rglob("*") if p.is_file()) if source.path.is_dir() else [source.path]


def huggingface_files(source: HuggingFaceSource) -> list[Path]:
    return [Path(f) for f in source.data_files or [] if Path(f).is_file()]


# ---------------------------------------------------------------- any kind, through the registry


def read_source(source: SourceConfig, num_proc: int = 1, progress: bool = True) -> SourceResult:
    """Read a source with its kind's registered reader."""
    return SOURCES.get(source.kind).read(source, num_proc=num_proc, progress=progress)


def input_files(source: SourceConfig) -> list[Path]:
    """Every local file a source reads, for the dataset fingerprint."""
    files: list[Path] = [rules_path(source.rules)]
    if source.exclude_articles is not None:
        files.append(source.exclude_articles)
    return files + SOURCES.get(source.kind).input_files(source)


__all__ = ["LABELS", "Example", "SourceResult", "input_files", "read_bytes", "read_jsonl", "read_source", "read_text"]
