"""Sentence splitting with syntok, a maintained rule-based segmenter.

syntok keeps abbreviations ("U.S.", "Gen.", "D-Mass.", "5 p.m. Tuesday"), figures ("$2,150",
"3.5") and closing quotes attached to their sentence, which the naive split on ". " does not.
"""

from __future__ import annotations

from syntok import segmenter


def normalize(text: str) -> str:
    """Collapse whitespace; the key under which gold labels find their sentence again."""
    return " ".join(text.split())


# A piece that starts with a dash continues the one before: syntok ends a sentence after a
# dateline's closing parenthesis ("KYIV, Ukraine (AP) — Troops ...").
_CONTINUATION = ("—", "–", "-")


def split_sentences(paragraph: str) -> list[str]:
    """Split one paragraph into sentences, each with whitespace normalised.

    >>> split_sentences('Gen. Smith said the U.S. paid $2,150. "We won," he said.')
    ['Gen. Smith said the U.S. paid $2,150.', '"We won," he said.']
    >>> split_sentences('DALTON (Wire) — The river rose. It fell.')
    ['DALTON (Wire) — The river rose.', 'It fell.']
    """
    sentences: list[str] = []
    for para in segmenter.analyze(paragraph):
        for sentence in para:
            text = normalize("".join(str(token) for token in sentence))
            if not text:
                continue
            if sentences and text.startswith(_CONTINUATION):
                sentences[-1] = f"{sentences[-1]} {text}"
            else:
                sentences.append(text)
    return sentences


def article_sentences(paragraphs: list[str]) -> list[str]:
    """Sentences of an article, in order, from its cleaned paragraphs."""
    return [s for p in paragraphs for s in split_sentences(p)]


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
