"""Boilerplate removal for scraped news text.

Scraped articles carry navigation and furniture that is not part of the story: link teasers
("Learn More ..."), "Back to top button", "Related Articles", bare photo credits, bylines and
share prompts. The guidelines say a builder drops these before labeling and reports how many it
removed, so `clean_article` returns the kept paragraphs *and* a count per kind of removal.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

# Each rule: (kind reported in the dataset card, pattern matched against a whole stripped line).
# Keywords are case-insensitive ((?i:...)); name patterns stay case-sensitive so that ordinary
# sentences ("Photos show the damage.", "By the river, ...") are never taken for credits or bylines.
_NAME = r"[A-Z][\w.'-]*(?:\s+[A-Z][\w.'-]*){0,3}"
_AGENCY = r"(?i:ap|afp|reuters|epa|getty images?|associated press|pool|file)"
_BOILERPLATE: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (kind, re.compile(pattern))
    for kind, pattern in (
        ("navigation", r"(?i:back to top(?: button)?|related (?:articles|stories|coverage)|skip to (?:main )?content|"
                       r"advertisement|continue reading(?: below)?|scroll to continue(?: with content)?|"
                       r"(?:main )?menu|home|next article|previous article)\W*"),
        ("link_teaser", r"(?i:learn more|read more|see also|more from|also read)\s*[:\-–—]?\s+\S.*"
                        r"|(?i:related|watch|read)\s*:\s*\S.*"),
        # "AP Photo. File", "(AP Photo, File)", "Reuters", "(Getty Images)"
        ("photo_credit", rf"\(?\s*{_AGENCY}(?:[\s.,/]+(?:{_AGENCY}|(?i:photos?|images?|via)))*\s*\)?\.?"),
        # "(AP Photo/Jane Doe)", "Photo: Reuters", "Photo by Jane Doe", "(Reuters Photo/John Smith, File)"
        ("photo_credit", rf"\(?\s*(?:{_NAME}\s+)?(?i:(?:pool |file )?(?:photo|image|picture)s?)\s*(?:/|:|(?i:by))\s*"
                         rf"{_NAME}(?:\s*,\s*(?i:file))?\s*\)?"),
        ("byline", rf"(?i:by)\s+{_NAME}(?:\s*(?:,|(?i:and))\s*{_NAME})*"
                   r"(?:\s*[,|]\s*(?i:associated press|reuters|afp|staff writer|correspondent|\w+ reporter))?"),
        ("share_prompt", r"(?i:share (?:this|on)(?: article| story)?|tweet(?: this)?|email(?: this)?(?: article)?|"
                         r"click here to .*|sign up for .*|subscribe(?: now| to .*)?|follow us on .*|"
                         r"(?:copy )?link copied|print(?: this)?(?: article)?)\W*"),
    )
)


@dataclass
class CleanedArticle:
    """Paragraphs kept from one article, and what was removed, counted by kind."""

    paragraphs: list[str]
    removed: Counter[str] = field(default_factory=Counter)
    removed_lines: list[str] = field(default_factory=list)


def boilerplate_kind(line: str) -> str | None:
    """Return the kind of boilerplate `line` is (e.g. "photo_credit"), or None for story text.

    >>> boilerplate_kind("Back to top button")
    'navigation'
    """
    stripped = line.strip()
    if not stripped:
        return None
    for kind, pattern in _BOILERPLATE:
        if pattern.fullmatch(stripped):
            # A teaser-like start that reads as a sentence ("Watch officials said ...") is rare;
            # teasers have no sentence-final period in practice, real sentences do.
            if kind == "link_teaser" and stripped.endswith((".", '."', ".”")) and len(stripped.split()) > 12:
                continue
            return kind
    if not any(ch.isalnum() for ch in stripped):
        return "punctuation_only"
    return None


def clean_article(text: str) -> CleanedArticle:
    """Split raw article text into paragraphs and drop boilerplate lines.

    >>> clean_article("Storm hits coast.\\n\\nBack to top button\\n").paragraphs
    ['Storm hits coast.']
    """
    result = CleanedArticle(paragraphs=[])
    for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        stripped = " ".join(line.split())
        if not stripped:
            continue
        kind = boilerplate_kind(stripped)
        if kind is None:
            result.paragraphs.append(stripped)
        else:
            result.removed[kind] += 1
            result.removed_lines.append(stripped)
    return result
