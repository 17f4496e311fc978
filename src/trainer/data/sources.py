"""Readers that turn each kind of input into labeled sentence examples.

Every reader returns a `SourceResult`: the examples, what cleaning removed, and anything it could
not match (reported in the dataset card, never dropped silently).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from trainer.config import CorpusSource
from trainer.data.cleaning import clean_article
from trainer.data.sentences import article_sentences, normalize
from trainer.errors import DataError
from trainer.labels import check_labels


@dataclass
class Example:
    """One labeled sentence, with where it came from."""

    text: str
    label: str
    article: str
    sentence_index: int
    label_source: str
    source: str
    beat: str = ""


@dataclass
class SourceResult:
    examples: list[Example] = field(default_factory=list)
    removed: Counter[str] = field(default_factory=Counter)
    unlabeled: list[dict[str, Any]] = field(default_factory=list)
    unused_labels: list[dict[str, Any]] = field(default_factory=list)
    articles: int = 0


def read_text(path: Path) -> str:
    """Read a UTF-8 text file, with a DataError for undecodable bytes."""
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(
            f"{path}: expected UTF-8 text, found an undecodable byte at offset {exc.start}; "
            "re-save the file as UTF-8"
        ) from None


def read_jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield (line number, object) for each non-blank line; DataError names the bad line."""
    for number, line in enumerate(read_text(path).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}:{number}: expected a JSON object per line, found invalid JSON ({exc.msg})") from None
        if not isinstance(obj, dict):
            raise DataError(f"{path}:{number}: expected a JSON object per line, found {type(obj).__name__}")
        yield number, obj


def _require(obj: dict[str, Any], keys: tuple[str, ...], where: str) -> None:
    missing = [k for k in keys if k not in obj]
    if missing:
        raise DataError(f"{where}: expected keys {list(keys)}, missing {missing}")


def read_corpus(source: CorpusSource, progress: bool = True) -> SourceResult:
    """Read a folder of articles and join the gold labels by (article, normalised sentence)."""
    gold: dict[tuple[str, str], str] = {}
    for number, obj in read_jsonl(source.labels):
        where = f"{source.labels}:{number}"
        _require(obj, ("article", "sentence", "label"), where)
        check_labels([obj["label"]], where)
        gold[(obj["article"], normalize(obj["sentence"]))] = obj["label"]

    beats: dict[str, str] = {}
    if source.metadata is not None:
        for number, obj in read_jsonl(source.metadata):
            _require(obj, ("article",), f"{source.metadata}:{number}")
            beats[obj["article"]] = str(obj.get("beat", ""))

    files = sorted(source.articles.glob("*.txt"))
    if not files:
        raise DataError(f"{source.articles}: expected .txt articles in this folder, found none")

    result = SourceResult()
    used: set[tuple[str, str]] = set()
    for path in tqdm(files, desc=f"reading {source.articles}", unit="article", disable=not progress):
        article = path.stem
        text = read_text(path)
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
        {"article": article, "sentence": sentence} for (article, sentence) in gold if (article, sentence) not in used
    ]
    return result


def read_source(source: CorpusSource, progress: bool = True) -> SourceResult:
    """Dispatch on the source kind."""
    return read_corpus(source, progress=progress)


def input_files(source: CorpusSource) -> list[Path]:
    """Every file a source reads, for the dataset fingerprint."""
    files = sorted(source.articles.glob("*.txt")) + [source.labels]
    if source.metadata is not None:
        files.append(source.metadata)
    return files
