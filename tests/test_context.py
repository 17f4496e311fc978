"""Context as input: readers fill each sentence's neighbours where they know its article."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import CORPUS, FIXTURES
from trainer.config import LabeledSource, LabelStudioSource
from trainer.data.cleaning import clean_article
from trainer.data.labelstudio import read_labelstudio
from trainer.data.sentences import InContext, article_sentences, neighbours, sentence_spans
from trainer.data.sources import read_brat, read_corpus, read_folder, read_labeled

# A quotation that runs over three sentences: the middle one has no frame of its own (attributed by the rule
# the guidelines gained); only its neighbours show whose words they are.
QUOTATION = ('The river rose four feet overnight. The mayor said: "We have never seen water this high. '
             'The mill is gone. We will rebuild it," and left the meeting. Shops reopened on Friday.\n')


def _sentences(path: Path) -> list[str]:
    return article_sentences(clean_article(path.read_text(encoding="utf-8")).paragraphs)


# ---------------------------------------------------------------- readers


def test_corpus_neighbours_are_the_articles_sentences_labeled_or_not():
    from trainer.config import CorpusSource

    result = read_corpus(CorpusSource(articles=CORPUS / "articles", labels=CORPUS / "labels.jsonl"), progress=False)
    checked = 0
    for example in result.examples:
        sentences = _sentences(CORPUS / "articles" / f"{example.article}.txt")
        assert (example.before, example.after) == neighbours(sentences, example.sentence_index)
        checked += 1
    first = [e for e in result.examples if e.sentence_index == 0]
    assert first and all(e.before == "" and e.after for e in first)
    assert checked == len(result.examples) > 10


def test_folder_and_brat_neighbours_follow_the_article(tmp_path):
    from trainer.config import BratSource, FolderSource

    folder = tmp_path / "raw"
    folder.mkdir()
    (folder / "flood.txt").write_text(QUOTATION, encoding="utf-8")
    examples = read_folder(FolderSource(path=folder), progress=False).examples
    texts = [e.text for e in examples]
    assert [(e.before, e.after) for e in examples] == [neighbours(texts, i) for i in range(len(texts))]
    assert examples[0].before == "" and examples[-1].after == ""

    brat = read_brat(BratSource(path=FIXTURES / "brat"), progress=False).examples
    for article in {e.article for e in brat}:
        rows = sorted((e for e in brat if e.article == article), key=lambda e: e.sentence_index)
        texts = [e.text for e in rows]
        assert [(e.before, e.after) for e in rows] == [neighbours(texts, i) for i in range(len(texts))]


def test_labelstudio_neighbours_come_from_the_article_at_the_tasks_offsets(tmp_path):
    export = FIXTURES / "labelstudio-export.json"
    result = read_labelstudio(LabelStudioSource(path=export, articles=CORPUS / "articles"))
    tasks = {(t["data"]["meta"]["article"], t["data"]["meta"]["start"]): t for t in json.loads(export.read_text())}
    assert result.examples
    for example in result.examples:
        spans = sentence_spans((CORPUS / "articles" / f"{example.article}.txt").read_text(encoding="utf-8"))[0]
        position = next(i for i, s in enumerate(spans) if s.text == example.text)
        assert (example.article, spans[position].start) in tasks  # the sentence at the task's offsets
        assert (example.before, example.after) == neighbours([s.text for s in spans], position)
    # without the articles nothing is known of the neighbours
    plain = tmp_path / "plain.json"
    plain.write_text(json.dumps([{"id": 1, "data": {"text": "Shares rose."}, "annotations": [
        {"completed_by": 1, "result": [{"from_name": "label", "value": {"choices": ["verified"]}}]}]}]))
    assert [(e.before, e.after) for e in read_labelstudio(LabelStudioSource(path=plain)).examples] == [("", "")]


def test_a_task_over_two_sentences_takes_the_sentences_around_both(tmp_path):
    articles = tmp_path / "articles"
    articles.mkdir()
    text = "One fell. Two rose. Three held. Four ran.\n"
    (articles / "a.txt").write_text(text, encoding="utf-8")
    start, end = text.index("Two"), text.index("Three held.") + len("Three held.")
    export = tmp_path / "export.json"
    export.write_text(json.dumps([{"id": 1, "data": {"meta": {"article": "a", "start": start, "end": end}},
                                   "annotations": [{"completed_by": 1, "result": [
                                       {"from_name": "label", "value": {"choices": ["verified"]}}]}]}]))
    (example,) = read_labelstudio(LabelStudioSource(path=export, articles=articles)).examples
    assert (example.before, example.after) == ("One fell.", "Four ran.")


def test_labeled_rows_find_their_neighbours_only_in_named_articles(tmp_path):
    articles = tmp_path / "articles"
    articles.mkdir()
    (articles / "flood.txt").write_text(QUOTATION, encoding="utf-8")
    rows = tmp_path / "dev.jsonl"
    rows.write_text("\n".join(json.dumps(r) for r in [
        {"article": "flood", "text": "The mill is gone.", "label": "attributed"},
        {"article": "flood", "text": "A sentence the article does not hold.", "label": "verified"},
        # another splitter's sentence, two of ours: the neighbours are those around both
        {"article": "flood", "text": "Shops reopened on Friday.", "label": "verified"},
        {"article": "flood", "text": 'The mill is gone. We will rebuild it," and left the meeting.', "label": "attributed"},
        {"article": "wire-story", "text": "Shares rose.", "label": "verified"},  # not in the folder
        {"article": "../flood", "text": "The mill is gone.", "label": "attributed"},  # leads out: never read
    ]) + "\n")
    found = read_labeled(LabeledSource(path=rows, article_column="article", articles=articles)).examples
    assert (found[0].before, found[0].after) == ('The mayor said: "We have never seen water this high.',
                                                 'We will rebuild it," and left the meeting.')
    assert (found[2].before, found[2].after) == ('We will rebuild it," and left the meeting.', "")
    assert (found[3].before, found[3].after) == ('The mayor said: "We have never seen water this high.',
                                                 "Shops reopened on Friday.")
    assert [(e.before, e.after) for e in [found[1], *found[4:]]] == [("", "")] * 3
    # consecutive rows are not known to be in article order: without articles, no neighbours
    assert all(not e.before and not e.after
               for e in read_labeled(LabeledSource(path=rows, article_column="article")).examples)
    with pytest.raises(ValueError, match="expected article_column with articles"):
        LabeledSource(path=rows, articles=articles)


def test_a_built_dataset_carries_the_neighbours_to_the_texts(project):
    from trainer.config import load_data_config
    from trainer.data.build import CONTEXT_COLUMNS, build_dataset, split_texts

    built = build_dataset(load_data_config(project.write("data.yaml", project.data_config())), progress=False)
    train = built.dataset["train"]
    assert set(CONTEXT_COLUMNS.values()) <= set(train.column_names)
    texts = split_texts(train)
    assert all(isinstance(t, InContext) for t in texts) and list(map(str, texts)) == train["text"]
    assert [t.before for t in texts] == train["context_before"] and [t.after for t in texts] == train["context_after"]
