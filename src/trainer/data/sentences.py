"""Sentence splitting with syntok, a maintained rule-based segmenter.

syntok keeps abbreviations ("U.S.", "Gen.", "D-Mass.", "5 p.m. Tuesday"), figures ("$2,150",
"3.5") and closing quotes attached to their sentence, which the naive split on ". " does not.
Spans (character offsets into the raw text) are kept so that standoff annotations (brat) can be
matched to sentences.
"""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from syntok import segmenter

from trainer.data.cleaning import boilerplate_kind

# A piece that starts with a dash continues the one before: syntok ends a sentence after a
# dateline's closing parenthesis ("KYIV, Ukraine (AP) — Troops ...").
_CONTINUATION = ("—", "–", "-")


@dataclass(frozen=True)
class Sentence:
    """One sentence: whitespace-normalised text and its [start, end) offsets in the raw text."""

    text: str
    start: int
    end: int


class InContext(str):
    """A sentence that also knows its neighbours in its article (`before`, `after`; "" at an article's edge or
    where they are unknown). Everywhere else it is the sentence itself, so lists of them pass wherever texts
    go; a model that reads context (`model.context`) takes the neighbours from it.

    >>> s = InContext("It fell.", before="The river rose.")
    >>> s, s.before, s.after
    ('It fell.', 'The river rose.', '')
    """

    before: str
    after: str

    def __new__(cls, text: str, before: str = "", after: str = "") -> InContext:
        sentence = super().__new__(cls, text)
        sentence.before, sentence.after = before, after
        return sentence

    def __reduce__(self) -> tuple[type, tuple[str, str, str]]:  # worker processes get the neighbours too
        return InContext, (str(self), self.before, self.after)


def neighbours(sentences: Sequence[str], index: int) -> tuple[str, str]:
    """The sentences before and after `sentences[index]` ("" at either end).

    >>> neighbours(["A.", "B.", "C."], 0)
    ('', 'B.')
    """
    return (sentences[index - 1] if index > 0 else "", sentences[index + 1] if index + 1 < len(sentences) else "")


def in_context(sentences: Sequence[str]) -> list[InContext]:
    """An article's sentences, in order, each with its neighbours."""
    return [InContext(s, *neighbours(sentences, i)) for i, s in enumerate(sentences)]


def normalize(text: str) -> str:
    """Collapse whitespace; the key under which gold labels find their sentence again."""
    return " ".join(text.split())


def _spans(paragraph: str, offset: int = 0) -> list[Sentence]:
    sentences: list[Sentence] = []
    for para in segmenter.analyze(paragraph):
        for tokens in para:
            if not tokens:
                continue
            start = tokens[0].offset
            end = tokens[-1].offset + len(tokens[-1].value)
            text = normalize(paragraph[start:end])
            if not text:
                continue
            if sentences and text.startswith(_CONTINUATION):
                last = sentences[-1]
                sentences[-1] = Sentence(f"{last.text} {text}", last.start, end + offset)
            else:
                sentences.append(Sentence(text, start + offset, end + offset))
    return sentences


def line_starts(text: str) -> list[int]:
    """Offsets where each line of `text` starts; `bisect_right(starts, offset) - 1` is an offset's line.

    >>> line_starts("a\\nbc\\n")
    [0, 2, 5]
    """
    return [0] + [i + 1 for i, ch in enumerate(text) if ch == "\n"]


def split_sentences(paragraph: str) -> list[str]:
    """Split one paragraph into sentences, each with whitespace normalised.

    >>> split_sentences('Gen. Smith said the U.S. paid $2,150. "We won," he said.')
    ['Gen. Smith said the U.S. paid $2,150.', '"We won," he said.']
    >>> split_sentences('DALTON (Wire) — The river rose. It fell.')
    ['DALTON (Wire) — The river rose.', 'It fell.']
    """
    return [s.text for s in _spans(paragraph)]


def article_sentences(paragraphs: list[str]) -> list[str]:
    """Sentences of an article, in order, from its cleaned paragraphs."""
    return [s for p in paragraphs for s in split_sentences(p)]


def sentence_spans(text: str, skip: list[tuple[int, int]] | None = None) -> tuple[list[Sentence], Counter[str]]:
    """Clean and split raw article text line by line, keeping offsets into `text`.

    Lines that are boilerplate, or that lie inside a `skip` span (e.g. an annotator's "Discard"),
    are dropped and counted by kind.
    """
    removed: Counter[str] = Counter()
    sentences: list[Sentence] = []
    position = 0
    for line in text.split("\n"):
        start, position = position, position + len(line) + 1
        if not line.strip():
            continue
        kind = boilerplate_kind(" ".join(line.split()))
        if kind is None and skip and any(a <= start + len(line) - len(line.lstrip()) < b for a, b in skip):
            kind = "discard_annotation"
        if kind is not None:
            removed[kind] += 1
            continue
        sentences.extend(_spans(line, start))
    return sentences, removed


class ArticleLines:
    """An article's sentences as `sentence_spans` splits it, each line split only when asked, so that the
    neighbours of a span cost its own lines and the nearest kept ones around it, not the whole article.

    >>> lines = ArticleLines("Floods\\n\\nOne fell. Two rose.\\nThree held.")
    >>> lines.neighbours(8, 17), lines.neighbours(18, 27), lines.neighbours(18, 33)
    (('Floods', 'Two rose.'), ('One fell.', 'Three held.'), ('One fell.', ''))
    """

    def __init__(self, text: str):
        self.text = text
        self.starts = line_starts(text)
        self._lines: dict[int, list[Sentence]] = {}

    def line(self, number: int) -> list[Sentence]:
        """The sentences of line `number` (none for an empty or boilerplate line), split once."""
        if number not in self._lines:
            start = self.starts[number]
            end = self.starts[number + 1] - 1 if number + 1 < len(self.starts) else len(self.text)
            line = self.text[start:end]
            kept = line.strip() and boilerplate_kind(" ".join(line.split())) is None
            self._lines[number] = _spans(line, start) if kept else []
        return self._lines[number]

    def neighbours(self, start: int, end: int) -> tuple[str, str]:
        """The sentences before and after the span [start, end): around the sentence that matches or holds it,
        or around the run of sentences it overlaps; ("", "") where it lies in no kept sentence."""
        first_line = bisect.bisect_right(self.starts, start) - 1
        last_line = bisect.bisect_right(self.starts, max(start, end - 1)) - 1
        own = [s for number in range(first_line, last_line + 1) for s in self.line(number)]
        inside = [i for i, s in enumerate(own) if s.start < end and s.end > start]
        if not inside:
            return "", ""
        first, last = inside[0], inside[-1]
        before = own[first - 1].text if first > 0 else self._nearest(first_line - 1, -1)
        after = own[last + 1].text if last + 1 < len(own) else self._nearest(last_line + 1, 1)
        return before, after

    def _nearest(self, number: int, step: int) -> str:
        while 0 <= number < len(self.starts):
            sentences = self.line(number)
            if sentences:
                return sentences[-1 if step < 0 else 0].text
            number += step
        return ""


def _main() -> None:
    """`python -m trainer.data.sentences FILE...`: print each file's cleaned sentences as JSONL."""
    import json
    import sys
    from pathlib import Path

    from trainer.data.cleaning import clean_article

    for path in sys.argv[1:]:
        cleaned = clean_article(Path(path).read_text(encoding="utf-8"))
        for i, sentence in enumerate(article_sentences(cleaned.paragraphs)):
            print(json.dumps({"article": Path(path).stem, "index": i, "sentence": sentence}, ensure_ascii=False))
        for line in cleaned.removed_lines:
            print(json.dumps({"article": Path(path).stem, "removed": line}, ensure_ascii=False), file=sys.stderr)


if __name__ == "__main__":
    _main()
