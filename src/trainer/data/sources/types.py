"""What every reader returns: sentence examples and a `SourceResult` that also counts what was
removed, skipped or left unmatched (reported in the dataset card, never dropped silently)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any


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
    meta: dict[str, str | bool] = field(default_factory=dict)  # a labeled file's other columns, when asked for
    before: str = ""  # the sentence before it in its article ("" at the start, or where the reader cannot know)
    after: str = ""  # the sentence after it
    teacher: list[float] | None = None  # a teacher's probabilities in LABELS order (kind: teacher sources)


@dataclass
class SourceResult:
    """A reader's output: its examples, and what the dataset card reports beside them."""

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
