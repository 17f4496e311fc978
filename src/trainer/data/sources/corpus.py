"""The corpus kind: a folder of plain-text articles with gold sentence labels joined from a JSONL file."""

from __future__ import annotations

from pathlib import Path

from trainer.config import CorpusSource
from trainer.data.cleaning import clean_article
from trainer.data.sentences import article_sentences, neighbours, normalize
from trainer.data.sources.text import column_value, read_article, read_exclusions, read_jsonl
from trainer.data.sources.types import Example, SourceResult
from trainer.errors import DataError
from trainer.infra.progress import bar
from trainer.labels import check_labels


def read_corpus(source: CorpusSource, num_proc: int = 1, progress: bool = True) -> SourceResult:
    """Read a folder of articles and join the gold labels by (article, normalised sentence)."""
    gold: dict[tuple[str, str], str] = {}
    for number, obj in read_jsonl(source.labels):
        where = f"{source.labels}:{number}"
        for key in ("article", "sentence", "label"):
            column_value(obj, key, where)
        check_labels([obj["label"]], where)
        gold[(obj["article"], normalize(obj["sentence"]))] = obj["label"]

    beats: dict[str, str] = {}
    if source.metadata is not None:
        for number, obj in read_jsonl(source.metadata):
            beats[column_value(obj, "article", f"{source.metadata}:{number}")] = str(obj.get("beat", ""))

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
        sentences = article_sentences(cleaned.paragraphs)
        for index, sentence in enumerate(sentences):
            key = (article, sentence)
            label = gold.get(key)
            if label is None:
                result.unlabeled.append({"article": article, "sentence_index": index, "text": sentence})
                continue
            used.add(key)
            before, after = neighbours(sentences, index)  # unlabeled neighbours too: the article as written
            result.examples.append(Example(sentence, label, article, index, "gold", f"corpus:{source.articles}",
                                           beats.get(article, ""), before=before, after=after))
    result.unused_labels = [
        {"article": a, "sentence": s} for (a, s) in gold if (a, s) not in used and a not in excluded
    ]
    return result


def corpus_files(source: CorpusSource) -> list[Path]:
    return sorted(source.articles.glob("*.txt")) + [source.labels] + ([source.metadata] if source.metadata else [])


def corpus_articles(source: CorpusSource) -> Path:
    """The folder of this corpus's article files."""
    return source.articles
