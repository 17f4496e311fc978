"""`trainer select`: choose the sentences worth labeling next, and write them for annotation.

Candidates come from any unlabeled input (a folder of articles, a JSONL/CSV/Parquet file with a
text column, or a data config's article sources), cleaned and split as `build-data` does, each
with its article id, paragraph and character offsets. The strategies, combinable:

- `uncertainty`: the model's least sure sentences (smallest top-two margin, or highest entropy);
- `disagreement`: sentences where the model and the rule labeler disagree;
- `rare`: a share of the picks reserved for sentences likely of the rarest label;
- then diversity: at most `max_per_article` per article, and a spread over the encoder's
  embedding space (k-means clusters or farthest points over a pool of the best candidates).

Fixed by a seed. The picks are written as Label Studio tasks (the target sentence highlighted in its
paragraph; the model's guess as a prediction only when asked, since a pre-selected guess anchors the
annotator), the matching labeling config, and the same rows as CSV and JSONL.

>>> margin_uncertainty(np.array([[0.5, 0.4, 0.1], [0.9, 0.05, 0.05]])).round(2).tolist()
[0.9, 0.15]
"""

from __future__ import annotations

import bisect
import csv
import json
import logging
import math
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from trainer.infra.atomic import atomic_folder
from trainer.data.sentences import line_starts, normalize, sentence_spans
from trainer.errors import ConfigError, DataError
from trainer.labels import LABELS

log = logging.getLogger(__name__)

STRATEGIES = ("uncertainty", "disagreement", "rare")
Uncertainty = Literal["margin", "entropy"]
Diversity = Literal["kmeans", "farthest", "none"]
TASKS_FILE = "tasks.json"
CONFIG_FILE = "labeling-config.xml"
ROWS_CSV = "tasks.csv"
ROWS_JSONL = "tasks.jsonl"
# The pool that diversity spreads over: this many candidates per pick, best first.
POOL_PER_PICK = 5


@dataclass
class Candidate:
    """A sentence that could be labeled, and where it stands in its article."""

    article: str
    sentence_index: int
    paragraph_index: int
    text: str
    start: int  # [start, end) in the article text as read (HTML: its extracted text)
    end: int
    paragraph: str
    source: str
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SelectSettings:
    """How `select` picks `n` sentences."""

    n: int
    strategies: tuple[str, ...] = ("uncertainty",)
    uncertainty: Uncertainty = "margin"
    diversity: Diversity = "kmeans"
    max_per_article: int = 3
    rare_share: float = 0.3
    seed: int = 13

    def check(self) -> None:
        unknown = sorted(set(self.strategies) - set(STRATEGIES))
        if unknown:
            raise ConfigError(f"--strategy: expected some of {', '.join(STRATEGIES)}, found {', '.join(unknown)}")
        if self.n < 1:
            raise ConfigError(f"--n: expected at least 1 sentence to select, found {self.n}")
        if self.max_per_article < 1:
            raise ConfigError(f"--max-per-article: expected at least 1, found {self.max_per_article}")
        if not 0 <= self.rare_share <= 1:
            raise ConfigError(f"--rare-share: expected a share between 0 and 1, found {self.rare_share}")


# ---------------------------------------------------------------- candidates


def _article_candidates(article: str, text: str, source: str, meta: dict[str, Any]) -> list[Candidate]:
    sentences, _ = sentence_spans(text)
    starts = line_starts(text)
    out = []
    for index, sentence in enumerate(sentences):
        line = bisect.bisect_right(starts, sentence.start) - 1
        line_end = text.find("\n", sentence.start)
        paragraph = text[starts[line] : line_end if line_end >= 0 else len(text)].strip()
        out.append(Candidate(article, index, line, sentence.text, sentence.start, sentence.end, paragraph, source,
                             dict(meta)))
    return out


def read_candidates(
    path: Path, text_column: str = "text", id_column: str | None = None, on_bad_encoding: str = "error"
) -> list[Candidate]:
    """Every sentence of the input, cleaned and split as build-data does."""
    from trainer.config import FolderSource, load_data_config
    from trainer.data.sources import SourceResult, article_folder, folder_documents, read_exclusions

    if not path.exists():
        raise DataError(f"{path}: expected a folder of articles, a JSONL/CSV/Parquet file or a data config, "
                        "found nothing there (check the path)")
    if path.suffix.lower() in (".yaml", ".yml"):  # a data config: its article folders, less its exclusions
        sources = [FolderSource(path=article_folder(source), on_bad_encoding=on_bad_encoding,
                                exclude_articles=source.exclude_articles)
                   for source in load_data_config(path).sources]
    else:
        sources = [FolderSource(path=path, text_column=text_column, id_column=id_column,
                                on_bad_encoding=on_bad_encoding)]
    candidates: list[Candidate] = []
    seen: set[str] = set()
    for source in sources:
        excluded = read_exclusions(source.exclude_articles)
        for article, text, where in folder_documents(source, SourceResult()):
            if article in excluded:
                continue
            if article in seen:
                raise DataError(f"{where}: expected unique article ids, found {article!r} twice; set --id-column")
            seen.add(article)
            candidates += _article_candidates(article, text, str(source.path), {})
    if not candidates:
        raise DataError(f"{path}: expected sentences to choose from, found none")
    return candidates


def labeled_texts(data_configs: Sequence[Path]) -> set[str]:
    """Normalised sentences that the given data configs label already (to skip them)."""
    from trainer.config import load_data_config
    from trainer.data.sources import read_source

    texts: set[str] = set()
    for path in data_configs:
        for source in load_data_config(path).sources:
            result = read_source(source, progress=False)
            texts |= {normalize(e.text) for e in result.examples if e.label_source != "rule"}
    return texts


# ---------------------------------------------------------------- scores


def margin_uncertainty(probabilities: np.ndarray) -> np.ndarray:
    """1 - (top probability - second probability): 1 where the model cannot choose, 0 where it is sure."""
    top2 = np.sort(probabilities, axis=1)[:, -2:]
    return 1.0 - (top2[:, 1] - top2[:, 0])


def entropy_uncertainty(probabilities: np.ndarray) -> np.ndarray:
    """Entropy of each row over log(number of labels): 1 for a uniform row."""
    p = np.clip(probabilities, 1e-12, 1.0)
    return -(p * np.log(p)).sum(axis=1) / math.log(probabilities.shape[1])


def priorities(
    probabilities: np.ndarray, rule_labels: Sequence[str], settings: SelectSettings
) -> np.ndarray:
    """One priority per candidate: its uncertainty, plus 1 where the model and the rules disagree."""
    score = np.zeros(len(probabilities))
    if "uncertainty" in settings.strategies:
        measure = margin_uncertainty if settings.uncertainty == "margin" else entropy_uncertainty
        score += measure(probabilities)
    if "disagreement" in settings.strategies:
        predicted = np.array([LABELS[i] for i in probabilities.argmax(axis=1)])
        score += predicted != np.array(rule_labels)
    return score


def rarest_label(probabilities: np.ndarray) -> str:
    """The label the model predicts least often over the candidates."""
    counts = Counter(int(i) for i in probabilities.argmax(axis=1))
    return LABELS[min(range(len(LABELS)), key=lambda i: (counts.get(i, 0), i))]


# ---------------------------------------------------------------- picking


def _capped(order: Sequence[int], candidates: Sequence[Candidate], cap: int, taken: Counter[str]) -> list[int]:
    out = []
    for i in order:
        if taken[candidates[i].article] < cap:
            out.append(i)
            taken[candidates[i].article] += 1
    return out


def _spread(pool: list[int], k: int, embed: Any, settings: SelectSettings) -> list[int]:
    """k of `pool` (best first) spread over the embedding space."""
    if k >= len(pool) or settings.diversity == "none":
        return pool[:k]
    vectors = embed(pool)
    if settings.diversity == "kmeans":
        from sklearn.cluster import KMeans

        clusters = KMeans(n_clusters=k, random_state=settings.seed, n_init=4).fit_predict(vectors)
        best: dict[int, int] = {}
        for position, cluster in enumerate(clusters):  # pool is best first: the first of each cluster wins
            best.setdefault(int(cluster), position)
        return [pool[p] for p in sorted(best.values())]
    chosen = [0]  # farthest points, from the best candidate on
    distance = np.linalg.norm(vectors - vectors[0], axis=1)
    while len(chosen) < k:
        nxt = int(distance.argmax())
        chosen.append(nxt)
        distance = np.minimum(distance, np.linalg.norm(vectors - vectors[nxt], axis=1))
    return [pool[p] for p in sorted(chosen)]


def pick(
    candidates: Sequence[Candidate],
    probabilities: np.ndarray,
    rule_labels: Sequence[str],
    embed: Any,
    settings: SelectSettings,
) -> list[int]:
    """Indices of the candidates to label, best first. `embed(indices) -> vectors` for the diversity step."""
    settings.check()
    rng = np.random.default_rng(settings.seed)
    score = priorities(probabilities, rule_labels, settings)
    tiebreak = rng.random(len(candidates))
    order = sorted(range(len(candidates)), key=lambda i: (-score[i], tiebreak[i]))
    taken: Counter[str] = Counter()
    picks: list[int] = []
    if "rare" in settings.strategies:
        rare = LABELS.index(rarest_label(probabilities))
        likely = [i for i in order if probabilities[i].argmax() == rare or rule_labels[i] == LABELS[rare]]
        k = min(round(settings.n * settings.rare_share), len(likely))
        pool = _capped(likely, candidates, settings.max_per_article, Counter(taken))[: k * POOL_PER_PICK]
        picks = _spread(pool, k, embed, settings)
        taken.update(candidates[i].article for i in picks)
    chosen = set(picks)
    rest = [i for i in order if i not in chosen]
    pool = _capped(rest, candidates, settings.max_per_article, taken)[: (settings.n - len(picks)) * POOL_PER_PICK]
    picks += _spread(pool, settings.n - len(picks), embed, settings)
    return sorted(picks, key=lambda i: (-score[i], tiebreak[i]))


# ---------------------------------------------------------------- writing


def label_studio_config() -> str:
    """The labeling page: the context with the sentence marked (`$paragraph_html`, from `task`), the sentence,
    and one choice per label with its definition."""
    from xml.sax.saxutils import quoteattr

    from trainer.labels import LABEL_DEFINITIONS

    choices = "\n".join(
        f"    <Choice value={quoteattr(label)} hint={quoteattr(LABEL_DEFINITIONS[label])}/>" for label in LABELS
    )
    legend = "; ".join(f"{label}: {LABEL_DEFINITIONS[label]}" for label in LABELS)
    return f"""<View>
  <Style>.trainer-context mark {{ background: #ffe58f; padding: 0 2px; font-weight: 600; }}</Style>
  <Header value="The paragraph, with the sentence to label highlighted (context only)"/>
  <View className="trainer-context">
    <HyperText name="paragraph" value="$paragraph_html" inline="true"/>
  </View>
  <Header value="Label the sourcing of this sentence's main claim"/>
  <Text name="text" value="$text"/>
  <Choices name="label" toName="text" choice="single" showInline="true" required="true">
{choices}
  </Choices>
  <Header value={quoteattr(legend + ". The full rules: the labeling guidelines.")} size="6"/>
</View>
"""


def marked_paragraph(paragraph: str, sentence: str) -> str:
    """The paragraph as HTML with the sentence in a <mark> (all text escaped).

    >>> marked_paragraph("Rain fell. <b>Roads</b> closed, police said.", "<b>Roads</b> closed, police said.")
    'Rain fell. <mark>&lt;b&gt;Roads&lt;/b&gt; closed, police said.</mark>'
    """
    from html import escape

    at = paragraph.find(sentence)
    if at < 0:  # the sentence spans lines: the paragraph shown is its first line
        return f"{escape(paragraph)}<br/><mark>{escape(sentence)}</mark>"
    end = at + len(sentence)
    return f"{escape(paragraph[:at])}<mark>{escape(sentence)}</mark>{escape(paragraph[end:])}"


def task(candidate: Candidate, probabilities: np.ndarray | None, model_version: str,
         context_html: str | None = None) -> dict[str, Any]:
    """One Label Studio task; with `probabilities`, the model's guess as a prediction to sort by.
    `context_html` is the context shown with the sentence marked (default: its paragraph,
    `marked_paragraph`). The candidate's `meta` goes into the task's `data.meta` beside its place in the
    article."""
    data: dict[str, Any] = {
        "text": candidate.text, "paragraph": candidate.paragraph,
        "paragraph_html": context_html if context_html is not None
        else marked_paragraph(candidate.paragraph, candidate.text),
        "meta": {"article": candidate.article, "start": candidate.start, "end": candidate.end,
                 "sentence_index": candidate.sentence_index, "paragraph_index": candidate.paragraph_index,
                 "source": candidate.source, **candidate.meta}}
    out: dict[str, Any] = {"data": data}
    if probabilities is not None:
        best = int(probabilities.argmax())
        out["predictions"] = [{
            "model_version": model_version,
            "score": round(float(probabilities[best]), 4),
            "result": [{"from_name": "label", "to_name": "text", "type": "choices",
                        "value": {"choices": [LABELS[best]]}}],
        }]
    return out


def write_selection(
    output: Path, candidates: Sequence[Candidate], picks: Sequence[int], probabilities: np.ndarray,
    model_version: str, with_predictions: bool = False,
) -> None:
    """Label Studio tasks and config, and the same rows as CSV and JSONL, written whole or not at all."""
    if output.exists():
        raise ConfigError(f"--output: expected a new folder, found existing {output}; choose another")
    tasks = [task(candidates[i], probabilities[i] if with_predictions else None, model_version) for i in picks]
    rows = []
    for i in picks:
        row = {k: v for k, v in asdict(candidates[i]).items() if k != "meta"}
        if with_predictions:
            row |= {"predicted": LABELS[int(probabilities[i].argmax())],
                    **{f"p_{label}": round(float(probabilities[i][j]), 4) for j, label in enumerate(LABELS)}}
        rows.append(row)
    with atomic_folder(output) as tmp:
        (tmp / TASKS_FILE).write_text(json.dumps(tasks, indent=2, ensure_ascii=False), encoding="utf-8")
        (tmp / CONFIG_FILE).write_text(label_studio_config(), encoding="utf-8")
        (tmp / ROWS_JSONL).write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
        with (tmp / ROWS_CSV).open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]) + ["label"] if rows else ["text", "label"])
            writer.writeheader()
            writer.writerows(rows)


def scored(classifier: Any, texts: Sequence[str]) -> Iterator[Any]:
    """`classifier.iter_predict(texts)` with progress: sentences done, the total, the rate, the time left."""
    from trainer.infra.progress import bar

    progress = bar(total=len(texts), desc="scoring", unit="sentence", mininterval=1.0)
    for prediction in classifier.iter_predict(texts, chunk_size=classifier.progress_chunk()):
        progress.update(1)
        yield prediction
    progress.close()


def select(
    model: str | Path,
    input: Path,
    n: int,
    output: Path,
    settings: SelectSettings | None = None,
    skip_labeled: Sequence[Path] = (),
    with_predictions: bool = False,
    text_column: str = "text",
    id_column: str | None = None,
) -> list[Candidate]:
    """Pick `n` sentences of `input` to label with `model` and write them to `output`; returns the picks."""
    from trainer.data.rules import RuleLabeler, rules_path
    from trainer.workflows.predict import load_classifier

    settings = settings or SelectSettings(n=n)
    settings.check()
    if output.exists():
        raise ConfigError(f"--output: expected a new folder, found existing {output}; choose another")
    candidates = read_candidates(input, text_column, id_column)
    known = labeled_texts(skip_labeled)
    if known:
        before = len(candidates)
        candidates = [c for c in candidates if normalize(c.text) not in known]
        log.info("skipped %d sentences labeled already", before - len(candidates))
        if not candidates:
            raise DataError(f"{input}: expected sentences left to label, found none: all {before} are labeled "
                            "in the --skip-labeled data")
    log.info("scoring %d candidate sentences from %d articles", len(candidates), len({c.article for c in candidates}))
    classifier = load_classifier(model)
    texts = [c.text for c in candidates]
    probabilities = np.array([list(p.probabilities.values()) for p in scored(classifier, texts)])
    labeler = RuleLabeler.from_yaml(rules_path(None))
    rule_labels = [labeler.label(t).label for t in texts]
    backend = classifier.backend

    def embed(indices: list[int]) -> np.ndarray:
        if hasattr(backend, "embed"):
            return backend.embed([texts[i] for i in indices])
        from sklearn.feature_extraction.text import TfidfVectorizer  # backends without an encoder

        return TfidfVectorizer(sublinear_tf=True).fit_transform([texts[i] for i in indices]).toarray()

    picks = pick(candidates, probabilities, rule_labels, embed, settings)
    write_selection(output, candidates, picks, probabilities, Path(str(model)).name, with_predictions)
    return [candidates[i] for i in picks]
