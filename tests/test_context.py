"""Context as input (`model.context`): readers fill each sentence's neighbours, a context model reads the pair
(the sentence; 'previous [SEP] next') in training, prediction, tag and export, and bare sentences still work."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from tests.conftest import CORPUS, FIXTURES, TINY_TRAINING, make_project, tiny_model_section
from trainer.config import DEFAULT_CONTEXT_MAX_LENGTH, DEFAULT_MAX_LENGTH, LabeledSource, LabelStudioSource
from trainer.config import load_config
from trainer.data.cleaning import clean_article
from trainer.data.labelstudio import read_labelstudio
from trainer.data.sentences import InContext, article_sentences, in_context, neighbours, sentence_spans
from trainer.data.sources import read_brat, read_corpus, read_folder, read_labeled
from trainer.errors import ConfigError
from trainer.models.batching import encode, encode_pairs
from trainer.outputs.model_folder import CONTEXT_KEY, read_meta

# A quotation that runs over three sentences: the middle one has no frame of its own (attributed by the rule
# the guidelines gained); only its neighbours show whose words they are.
QUOTATION = ('The river rose four feet overnight. The mayor said: "We have never seen water this high. '
             'The mill is gone. We will rebuild it," and left the meeting. Shops reopened on Friday.\n')


def _tokenizer():
    from transformers import AutoTokenizer

    from trainer.models.transformer import default_pretrained

    return AutoTokenizer.from_pretrained(default_pretrained())


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


def test_splitting_only_the_lines_around_a_span_gives_the_whole_articles_neighbours():
    from trainer.data.sentences import ArticleLines

    checked = 0
    for path in sorted((CORPUS / "articles").glob("*.txt")):
        text = path.read_text(encoding="utf-8")
        spans = sentence_spans(text)[0]
        lines = ArticleLines(text)
        for i, s in enumerate(spans):
            assert lines.neighbours(s.start, s.end) == neighbours([x.text for x in spans], i)
            checked += 1
    assert checked > 30


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


def test_pseudo_labels_take_their_neighbours_from_the_tag_output(trained_sklearn, tmp_path):
    from trainer.config import PseudoLabelSource
    from trainer.data.pseudo import read_pseudo
    from trainer.workflows.tagging import tag

    folder = tmp_path / "articles"
    folder.mkdir()
    (folder / "flood.txt").write_text(QUOTATION, encoding="utf-8")
    tag(trained_sklearn[1].model_dir, folder, tmp_path / "tagged", progress=False)
    examples = read_pseudo(PseudoLabelSource(path=tmp_path / "tagged", min_probability=0.34)).examples
    texts = [s.text for s in sentence_spans(QUOTATION)[0]]
    assert examples  # each kept sentence's neighbours, kept or not
    assert [(e.before, e.after) for e in examples] == [neighbours(texts, e.sentence_index) for e in examples]


def test_a_built_dataset_carries_the_neighbours_to_the_texts(project):
    from trainer.config import load_data_config
    from trainer.data.build import CONTEXT_COLUMNS, build_dataset, split_texts

    built = build_dataset(load_data_config(project.write("data.yaml", project.data_config())), progress=False)
    train = built.dataset["train"]
    assert set(CONTEXT_COLUMNS.values()) <= set(train.column_names)
    texts = split_texts(train)
    assert all(isinstance(t, InContext) for t in texts) and list(map(str, texts)) == train["text"]
    assert [t.before for t in texts] == train["context_before"] and [t.after for t in texts] == train["context_after"]


def test_evaluate_reads_a_data_configs_sentences_with_their_neighbours(tmp_path):
    from trainer.workflows.evaluate import rows_from_data_config

    articles = tmp_path / "articles"
    articles.mkdir()
    (articles / "flood.txt").write_text(QUOTATION, encoding="utf-8")
    (tmp_path / "dev.jsonl").write_text(json.dumps({"article": "flood", "text": "The mill is gone.",
                                                    "label": "attributed"}) + "\n")
    config = tmp_path / "dev.yaml"
    config.write_text(yaml.safe_dump({"name": "dev", "output_dir": str(tmp_path / "out"), "sources": [
        {"kind": "labeled", "path": str(tmp_path / "dev.jsonl"), "article_column": "article",
         "articles": str(articles)}]}))
    (text,) = rows_from_data_config(config).texts
    assert (text, text.before) == ("The mill is gone.", 'The mayor said: "We have never seen water this high.')


# ---------------------------------------------------------------- the option and the pairs


def test_the_option_is_off_by_default_and_lengthens_the_input_when_on(tiny_model_dir):
    from trainer.config import TransformerModel

    assert TransformerModel().context is False and TransformerModel().max_length == DEFAULT_MAX_LENGTH
    assert TransformerModel(context=True).max_length == DEFAULT_CONTEXT_MAX_LENGTH
    assert TransformerModel(context=True, max_length=96).max_length == 96  # a length the config sets stays


def test_pairs_read_the_sentence_whole_and_cut_only_the_context():
    tokenizer = _tokenizer()
    middle = in_context(article_sentences([QUOTATION.strip()]))[2]
    assert str(middle) == "The mill is gone."
    (ids,), (cut,) = encode(tokenizer, [middle], 64, context=True)
    decoded = tokenizer.decode(ids)
    assert decoded == ('[CLS] the mill is gone. [SEP] the mayor said : " we have never seen water this high. [SEP] '
                       'we will rebuild it, " and left the meeting. [SEP]') and not cut
    # a long context is cut, the sentence never
    long = InContext("The mill is gone.", before="word " * 200, after="more " * 200)
    (ids,), (cut,) = encode_pairs(tokenizer, [long], 32)
    assert len(ids) == 32 and tokenizer.decode(ids).startswith("[CLS] the mill is gone. [SEP] word") and not cut
    # a bare sentence is the pair with an empty context; one too long for a pair is read alone, and cut
    assert tokenizer.decode(encode(tokenizer, ["Shares rose."], 64, context=True)[0][0]) == \
        "[CLS] shares rose. [SEP] [SEP] [SEP]"
    (ids,), (cut,) = encode_pairs(tokenizer, [InContext("word " * 100, before="A.")], 32)
    assert len(ids) == 32 and cut and tokenizer.decode(ids).count("[SEP]") == 1
    # without the option, neighbours are ignored: the same ids as the bare sentence
    assert encode(tokenizer, [middle], 64)[0] == encode(tokenizer, [str(middle)], 64)[0]


def test_the_gpu_stream_tokenises_pairs_like_the_cpu_path():
    import torch

    from trainer.models.streaming import TokenizedBlocks

    tokenizer = _tokenizer()
    texts = in_context(article_sentences([QUOTATION.strip()]))
    block = TokenizedBlocks(texts, tokenizer, 64, 4096, block=len(texts), context=True)[0]
    streamed = {int(i): row[row != (tokenizer.pad_token_id or 0)].tolist()
                for index, ids, _ in block["batches"] for i, row in zip(index, ids)}
    assert [streamed[i] for i in range(len(texts))] == encode(tokenizer, texts, 64, context=True)[0]
    assert torch.equal(block["cut"], torch.zeros(len(texts), dtype=torch.bool))


# ---------------------------------------------------------------- a model that reads context


@pytest.fixture(scope="module")
def context_model(tmp_path_factory, tiny_model_dir):
    from trainer.workflows.train import train

    project = make_project(tmp_path_factory.mktemp("context"))
    model = {**tiny_model_section(tiny_model_dir), "context": True, "max_length": 96}
    return project, train(load_config(project.experiment("tiny-context", model, {**TINY_TRAINING, "epochs": 1})))


def test_training_gets_pairs_and_the_folder_keeps_the_option(context_model, tiny_model_dir):
    from trainer.workflows.recipe import prepare_run

    project, result = context_model
    assert read_meta(result.model_dir)[CONTEXT_KEY] is True
    assert "with the sentences before and after it" in (result.model_dir / "README.md").read_text()
    run = prepare_run(load_config(project.root / "configs" / "tiny-context.yaml"), progress=False)
    texts = run.texts["train"]
    inner = next(t for t in texts if t.before and t.after)
    ids = run.backend.encode([inner])[0]
    assert ids == run.backend.encode([InContext(str(inner), inner.before, inner.after)])[0]
    assert ids != run.backend.encode([str(inner)])[0]  # the neighbours are in what training reads
    assert run.backend.tokenizer.decode(ids).count("[SEP]") == 3


def test_a_plain_model_keeps_its_metadata(trained_tiny):
    _, result = trained_tiny
    assert CONTEXT_KEY not in read_meta(result.model_dir)
    assert "before and after it" not in (result.model_dir / "README.md").read_text()


def test_a_loaded_context_model_reads_bare_sentences_and_pairs(context_model):
    from trainer import load_classifier

    _, result = context_model
    classifier = load_classifier(result.model_dir)
    assert classifier.backend.context is True
    middle = in_context(article_sentences([QUOTATION.strip()]))[2]
    bare, paired = classifier.predict(["The mill is gone.", middle])
    assert bare.text == paired.text == "The mill is gone."
    assert sum(bare.probabilities.values()) == pytest.approx(1) and sum(paired.probabilities.values()) == \
        pytest.approx(1)
    assert bare.probabilities != paired.probabilities  # the neighbours change what the model reads
    # an article is read with its neighbours
    article = classifier.tag_article(QUOTATION)
    assert article[2].probabilities == pytest.approx(paired.probabilities, abs=1e-5)


def test_evaluating_a_context_model_on_bare_sentences_says_so(context_model, tmp_path, caplog):
    from trainer.workflows.evaluate import evaluate

    _, result = context_model
    data = tmp_path / "dev.jsonl"
    data.write_text("".join(json.dumps({"text": t, "label": l}) + "\n" for t, l in [
        ("The mill is gone.", "attributed"), ("Shares rose.", "verified"), ("It may have been a fire.", "unverified")]))
    with caplog.at_level("WARNING", logger="trainer.workflows.evaluate"):
        evaluate(result.model_dir, split=None, data=data, output=tmp_path / "report")
    assert "reads each sentence with its neighbours, and dev gives none" in caplog.text


def test_tag_passes_each_sentences_neighbours(context_model, tmp_path):
    from trainer import load_classifier
    from trainer.workflows.tagging import read_tables, tag

    _, result = context_model
    folder = tmp_path / "articles"
    folder.mkdir()
    (folder / "flood.txt").write_text(QUOTATION, encoding="utf-8")
    tag(result.model_dir, folder, tmp_path / "out", progress=False)
    rows = read_tables(tmp_path / "out").sort_values("sentence_index")
    sentences = in_context([s.text for s in sentence_spans(QUOTATION)[0]])
    expected = load_classifier(result.model_dir).predict(sentences)
    assert list(rows["p_attributed"]) == pytest.approx([p.probabilities["attributed"] for p in expected], abs=1e-5)
    bare = load_classifier(result.model_dir).predict([str(s) for s in sentences])
    assert list(rows["p_attributed"]) != pytest.approx([p.probabilities["attributed"] for p in bare], abs=1e-5)


def test_the_middle_of_a_quotation_carries_its_opening(context_model):
    from trainer.workflows.tagging import article_rows
    from trainer.data.rules import RuleLabeler, rules_path
    from trainer.workflows.tag_input import Article

    _, rows, _ = article_rows(Article("flood", QUOTATION, {}, "flood.txt"), RuleLabeler.from_yaml(rules_path(None)))
    inputs = [row["model_input"] for row in rows]
    assert [str(s) for s in inputs] == ["The river rose four feet overnight.",
                                        'The mayor said: "We have never seen water this high.', "The mill is gone.",
                                        'We will rebuild it," and left the meeting.', "Shops reopened on Friday."]
    middle = inputs[2]
    assert middle.before == 'The mayor said: "We have never seen water this high.'
    assert middle.after == 'We will rebuild it," and left the meeting.'
    backend = __import__("trainer").load_classifier(context_model[1].model_dir).backend
    decoded = backend.tokenizer.decode(backend.encode([middle])[0])
    assert 'the mayor said : " we have never seen water this high.' in decoded.split("[SEP]")[1]


def test_an_export_reads_context_like_its_source(context_model, tmp_path):
    pytest.importorskip("onnxruntime")
    from trainer import load_classifier
    from trainer.models.export import export_model

    _, result = context_model
    export_model(result.model_dir, tmp_path / "onnx", "onnx")
    assert read_meta(tmp_path / "onnx")[CONTEXT_KEY] is True
    middle = in_context(article_sentences([QUOTATION.strip()]))[2]
    exported = load_classifier(tmp_path / "onnx").predict([middle])[0].probabilities
    source = load_classifier(result.model_dir, "fp32").predict([middle])[0].probabilities
    assert exported == pytest.approx(source, abs=1e-3)


def test_a_damaged_context_entry_is_refused(tmp_path):
    from trainer.errors import ModelLoadError
    from trainer.outputs.model_folder import reads_context

    assert reads_context({}) is False and reads_context({CONTEXT_KEY: True}) is True
    with pytest.raises(ModelLoadError, match="expected context to be true or false, found 'yes'"):
        reads_context({CONTEXT_KEY: "yes"}, tmp_path)


def test_context_on_a_backend_without_it_is_a_config_error(project):
    path = project.experiment("tfidf", {"backend": "sklearn", "context": True})
    with pytest.raises(ConfigError, match="context"):
        load_config(path)
    assert yaml.safe_load(path.read_text())["model"]["context"] is True


def test_an_evaluations_data_fingerprint_counts_the_neighbours_only_where_there_are_some():
    import hashlib

    from trainer.workflows.evaluate import LabeledRows, data_fingerprint

    plain = LabeledRows("dev", ["It fell."], ["verified"])
    bare = LabeledRows("dev", [InContext("It fell.")], ["verified"])
    framed = LabeledRows("dev", [InContext("It fell.", before="The river rose.")], ["verified"])
    assert data_fingerprint(plain) == data_fingerprint(bare) == hashlib.sha256(b"verified\tIt fell.\n").hexdigest()
    assert data_fingerprint(framed) != data_fingerprint(plain)
