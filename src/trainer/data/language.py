"""The language of a text, so that English-only models never label German or Spanish in silence.

The detector is py3langid (a maintained fork of langid.py: a naive Bayes model over byte n-grams for
97 languages that ships inside the wheel, so nothing is downloaded at run time). A text counts as not
English only when the detector names another language with at least `MIN_CONFIDENCE`: short
sentences ("Ok.", "Shares rose.") get low, unreliable scores and are not flagged on a guess.

>>> detect("Der Minister sagte, die Gespräche seien gescheitert.").code
'de'
>>> detect("The minister said the talks had failed.").foreign
False
>>> detect("Ok.").foreign  # too short to tell: not flagged
False
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

ENGLISH = "en"
# Normalised probability above which another language is taken as the text's language: German and
# Spanish news sentences score 0.8 to 0.99; short English sentences score below 0.5 for any language.
MIN_CONFIDENCE = 0.5
# Characters of a long article the detector reads (its first part is enough, and keeps it fast).
MAX_CHARS = 5_000


@dataclass(frozen=True)
class Language:
    """What the detector says of one text: an ISO 639-1 code and its normalised probability."""

    code: str
    confidence: float

    @property
    def foreign(self) -> bool:
        """Confidently another language than English, the only one the models here were trained on."""
        return self.code != ENGLISH and self.confidence >= MIN_CONFIDENCE


@functools.cache
def _identifier() -> Any:
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


def detect(text: str) -> Language:
    """The language of `text` (its first `MAX_CHARS` characters)."""
    code, confidence = _identifier().classify(text[:MAX_CHARS])
    return Language(str(code), round(float(confidence), 4))


def foreign_summary(languages: Iterable[Language]) -> Counter[str]:
    """How many texts are confidently in each language other than English.

    >>> foreign_summary([Language("de", 0.9), Language("en", 0.9), Language("es", 0.2)])
    Counter({'de': 1})
    """
    return Counter(language.code for language in languages if language.foreign)


def warning(counts: Counter[str], total: int, what: str) -> str:
    """One line that says how many inputs are not English, by language, and what that means.

    >>> warning(Counter({"de": 2, "es": 1}), 10, "articles")
    '3 of 10 articles are not English (de 2, es 1): the model was trained on English news only, so their labels are not to be trusted'
    """
    found = ", ".join(f"{code} {n}" for code, n in counts.most_common())
    return (f"{sum(counts.values())} of {total} {what} are not English ({found}): the model was trained on English "
            "news only, so their labels are not to be trusted")
