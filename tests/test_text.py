"""Cleaning and sentence splitting on real scraped text and known hard spots."""

from __future__ import annotations

import pytest

from tests.conftest import SEED_ARTICLE
from trainer.data.cleaning import boilerplate_kind, clean_article
from trainer.data.sentences import article_sentences, split_sentences


@pytest.mark.skipif(not SEED_ARTICLE.is_file(), reason="shared seed article not present")
def test_seed_article_boilerplate_removed_and_counted():
    cleaned = clean_article(SEED_ARTICLE.read_text(encoding="utf-8"))
    assert cleaned.removed["link_teaser"] == 4
    assert cleaned.removed["photo_credit"] == 3
    assert cleaned.removed["navigation"] == 2  # "Related Articles", "Back to top button"
    text = "\n".join(cleaned.paragraphs)
    assert "Learn More" not in text and "Back to top" not in text and "AP Photo" not in text
    # story text, including photo captions (real sentences), is kept
    assert any(p.startswith("The AP saw many openings") for p in cleaned.paragraphs)
    assert any("Illich Iron & Steel Works" in p for p in cleaned.paragraphs)


@pytest.mark.parametrize(
    ("line", "kind"),
    [
        ("(AP Photo/Jane Doe)", "photo_credit"),
        ("Photo: Reuters", "photo_credit"),
        ("By Maria Lopez, Associated Press", "byline"),
        ("Share this article", "share_prompt"),
        ("Learn More We Can't Fix Inflation Without Saving Ukraine", "link_teaser"),
        ("Photos show the damage to the bridge.", None),
        ("By the river, soldiers dug in.", None),
        ("The AP saw many openings via job sites.", None),
    ],
)
def test_boilerplate_kinds(line, kind):
    assert boilerplate_kind(line) == kind


def test_abbreviations_quotes_and_figures_do_not_break_sentences():
    text = (
        'Gen. Mark Milley told reporters in the U.S. capital that bonuses of $2,150 were paid. '
        '"We will not retreat," he said. Sen. Jane Roe, D-Mass., said the vote was set for 5 p.m. Tuesday.'
    )
    assert split_sentences(text) == [
        "Gen. Mark Milley told reporters in the U.S. capital that bonuses of $2,150 were paid.",
        '"We will not retreat," he said.',
        "Sen. Jane Roe, D-Mass., said the vote was set for 5 p.m. Tuesday.",
    ]


def test_dateline_stays_with_its_sentence():
    assert split_sentences("LONDON (Wire) — Prices rose. They fell later.") == [
        "LONDON (Wire) — Prices rose.",
        "They fell later.",
    ]


def test_article_sentences_in_order_across_paragraphs():
    cleaned = clean_article("Headline here\n\nFirst one. Second one.\n\nBack to top button\n\nThird one.")
    assert article_sentences(cleaned.paragraphs) == ["Headline here", "First one.", "Second one.", "Third one."]
