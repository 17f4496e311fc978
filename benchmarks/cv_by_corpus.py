"""Accuracy per corpus: grouped cross-validation over the uniformly random halves of the news-outlets labels.

Each fold holds out the random-half sentences of a fifth (by default) of those articles, grouped by article,
and trains on everything else the experiment config's data holds, less every sentence of the held-out
articles. The held-out predictions of all folds are pooled per corpus (AllSides, BBC, Syrian war) and
scored: macro-F1 and unverified precision/recall, with 95% bootstrap intervals over articles. Since the
random halves are proportional stratified samples, these figures estimate each corpus's sentence-level
accuracy without the selection bias of the strategy half.

With --baseline MODEL, the same sentences are also scored by an existing model (today's default, trained on
the bundled corpus only), with a paired bootstrap of the difference. With --dev, each fold's model is also
scored on the dev set (with --dev-articles, each dev sentence with its neighbours from its article, where the
folder has it). With --context, each fold also trains the same config with `model.context` on (and max_length
192 unless --set names one), scored on the same held-out sentences, with a paired bootstrap of the difference
(context minus plain) per corpus. --limit N trains and scores each fold on a seeded sample of N sentences (a
quick check that it runs, not a figure).

    python benchmarks/cv_by_corpus.py --config configs/minilm-news-outlets.yaml --folds 3 \\
        --baseline models/minilm-bundled --dev ../shared/devset/real-news-dev.jsonl --out benchmarks/results/cv
    python benchmarks/cv_by_corpus.py --config configs/minilm-news-outlets.yaml --folds 5 --context \\
        --dev ../shared/devset/real-news-dev.jsonl --dev-articles ../shared/corpora/polnear/text \\
        --out benchmarks/results/cv-context
"""

from __future__ import annotations

import argparse
import json
import logging
from collections import defaultdict
from pathlib import Path

import numpy as np
from common import random_halves

from trainer.config import DEFAULT_CONTEXT_MAX_LENGTH, LabeledSource, load_config
from trainer.data.build import build_dataset, example_texts
from trainer.data.sentences import normalize
from trainer.data.sources import read_labeled
from trainer.metrics import bootstrap_ci, compute_metrics, paired_bootstrap, wilson
from trainer.outputs.tracking import Tracker
from trainer.workflows.recipe import pooled_sentences, prepare_run

log = logging.getLogger("cv_by_corpus")


def folds_of(groups: list[str], corpus_of: list[str | None], k: int, seed: int) -> list[dict[str, list[int]]]:
    """k folds over the articles that hold random-half sentences; train excludes every held-out article."""
    held_articles = sorted({g for g, c in zip(groups, corpus_of) if c is not None})
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(held_articles))
    fold_of = {held_articles[i]: n % k for n, i in enumerate(order)}
    folds = []
    for fold in range(k):
        test = [i for i, (g, c) in enumerate(zip(groups, corpus_of)) if c is not None and fold_of[g] == fold]
        out = {g for g, f in fold_of.items() if f == fold}
        train = [i for i, g in enumerate(groups) if g not in out]
        folds.append({"train": train, "validation": [], "test": test})
    return folds


def score(gold: list[str], predicted: list[str], groups: list[str]) -> dict:
    metrics = compute_metrics(gold, predicted)
    ci = bootstrap_ci(gold, predicted, groups)
    unverified = metrics["per_label"]["unverified"]
    flagged = sum(p == "unverified" for p in predicted)
    true_flags = sum(p == g == "unverified" for p, g in zip(predicted, gold))
    actual = sum(g == "unverified" for g in gold)
    return {"n": len(gold), "articles": len(set(groups)), "macro_f1": metrics["macro_f1"], "macro_f1_ci": ci["macro_f1"],
            "unverified_precision": unverified["precision"], "unverified_precision_ci": wilson(true_flags, flagged),
            "unverified_recall": unverified["recall"], "unverified_recall_ci": wilson(true_flags, actual),
            "unverified_f1": unverified["f1"], "unverified_n": actual, "unverified_flagged": flagged}


def context_overrides(overrides: list[str]) -> list[str]:
    """The overrides of the context run: the plain run's, with model.context on and the length of three
    sentences unless the overrides set one."""
    length = [] if any(o.startswith("model.max_length=") for o in overrides) else [
        f"model.max_length={DEFAULT_CONTEXT_MAX_LENGTH}"]
    return [*overrides, "model.context=true", *length]


def sampled(fold: dict[str, list[int]], limit: int | None, seed: int) -> dict[str, list[int]]:
    """The fold, or a seeded sample of `limit` sentences of each split (a quick check that the script runs)."""
    if limit is None:
        return fold
    rng = np.random.default_rng(seed)
    return {name: sorted(rng.permutation(index)[:limit].tolist()) for name, index in fold.items()}


def dev_rows(path: Path | None, articles: Path | None) -> tuple[list[str], list[str]]:
    """The dev set's texts (with their neighbours where `articles` holds their article) and labels."""
    if path is None:
        return [], []
    examples = read_labeled(LabeledSource(path=path, article_column="article", articles=articles)).examples
    return example_texts(examples), [e.label or "" for e in examples]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", required=True, type=Path)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--set", action="append", default=[], dest="overrides")
    parser.add_argument("--context", action="store_true",
                        help="also train each fold with model.context on; paired difference per corpus")
    parser.add_argument("--limit", type=int, help="train and score each fold on N sentences (a quick check)")
    parser.add_argument("--baseline", help="a model folder to score on the same held-out sentences")
    parser.add_argument("--dev", type=Path, help="the dev set (JSONL), scored by each fold's model")
    parser.add_argument("--dev-articles", type=Path, help="the folder of the dev set's articles (for context)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/cv_by_corpus"))
    parser.add_argument("--demo", type=Path, help="an article (text file): the last fold's models label each of its "
                        "sentences, side by side (e.g. data/examples/multi-sentence-quotation.txt)")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")

    configs = {"cv": load_config(args.config, args.overrides)}
    if args.context:
        configs["context"] = load_config(args.config, context_overrides(args.overrides))
    built = build_dataset(configs["cv"].data)
    texts, labels, groups = pooled_sentences(built)
    keys = {(article, text): corpus for corpus, rows in random_halves().items() for article, text, _ in rows}
    articles = [g.rsplit("/", 1)[1] for g in groups]  # groups are "<source>/<article>"; sources hold slashes
    corpus_of = [keys.get((a, normalize(t))) for a, t in zip(articles, texts)]
    log.info("%d sentences, %d in the random halves (%s), %d with neighbours", len(texts),
             sum(c is not None for c in corpus_of), {c: corpus_of.count(c) for c in sorted(set(keys.values()))},
             sum(bool(getattr(t, "before", "") or getattr(t, "after", "")) for t in texts))
    dev_texts, dev_gold = dev_rows(args.dev, args.dev_articles)

    demo = demo_sentences(args.demo)
    predicted: dict[str, dict[int, str]] = {name: {} for name in configs}
    demo_labels: dict[str, list[str]] = {}
    dev_scores: dict[str, list[float]] = {name: [] for name in configs}
    for number, fold in enumerate(folds_of(groups, corpus_of, args.folds, args.seed), 1):
        fold = sampled(fold, args.limit, args.seed + number)
        log.info("fold %d/%d: %d train, %d held out", number, args.folds, len(fold["train"]), len(fold["test"]))
        for name, config in configs.items():
            run = prepare_run(config, built, folds=fold)
            run.fit(Tracker(config.tracking, "cv-by-corpus", error="a benchmark: not tracked"))
            probabilities, _ = run.score("test")
            labels_ = run.backend.labels
            for i, p in zip(fold["test"], probabilities.argmax(axis=1)):
                predicted[name][i] = labels_[p]
            if demo:
                demo_labels[name] = [f"{labels_[p.argmax()]} {p.max():.2f}" for p in run.backend.predict_proba(demo)]
            if dev_texts:
                dev_predicted = [labels_[p] for p in run.backend.predict_proba(dev_texts).argmax(axis=1)]
                dev_scores[name].append(compute_metrics(dev_gold, dev_predicted)["macro_f1"])
                log.info("fold %d, %s: dev macro-F1 %.3f", number, name, dev_scores[name][-1])
    report(args, texts, labels, groups, corpus_of, predicted, dev_scores)
    for number, sentence in enumerate(demo):
        print(f"{number + 1}. {sentence}\n   " + "   ".join(f"{name}: {found[number]}" for name, found in demo_labels.items()))


def demo_sentences(path: Path | None) -> list[str]:
    """The sentences of an article, each with its neighbours (as `predict --file` reads them)."""
    if path is None:
        return []
    from trainer.data.cleaning import clean_article
    from trainer.data.sentences import article_sentences, in_context

    return in_context(article_sentences(clean_article(path.read_text(encoding="utf-8")).paragraphs))


def report(args: argparse.Namespace, texts: list[str], labels: list[str], groups: list[str],
           corpus_of: list[str | None], predicted: dict[str, dict[int, str]], dev_scores: dict[str, list[float]]) -> None:
    baseline = None
    held = sorted(predicted["cv"])
    if args.baseline:
        from trainer import load_classifier

        classifier = load_classifier(args.baseline)
        baseline = dict(zip(held, (p.label for p in classifier.predict([texts[i] for i in held]))))

    by_corpus: dict[str, list[int]] = defaultdict(list)
    for i in held:
        by_corpus[corpus_of[i]].append(i)
    result = {"config": str(args.config), "folds": args.folds, "overrides": args.overrides, "limit": args.limit,
              "corpora": {}}
    for corpus, index in sorted(by_corpus.items()):
        gold = [labels[i] for i in index]
        group = [groups[i] for i in index]
        plain = [predicted["cv"][i] for i in index]
        entry = {"cv": score(gold, plain, group)}
        if baseline is not None:
            entry["baseline"] = score(gold, [baseline[i] for i in index], group)
            entry["paired_delta"] = paired_bootstrap(gold, [baseline[i] for i in index], plain, group)
        if "context" in predicted:
            with_context = [predicted["context"][i] for i in index]
            entry["context"] = score(gold, with_context, group)
            entry["context_delta"] = paired_bootstrap(gold, plain, with_context, group)  # context minus plain
        result["corpora"][corpus] = entry
    if any(dev_scores.values()):
        result["dev_macro_f1_per_fold"] = dev_scores["cv"]
        if "context" in dev_scores:
            result["dev_macro_f1_per_fold_context"] = dev_scores["context"]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "cv_by_corpus.json").write_text(json.dumps(result, indent=1))
    print(f"\n{'corpus':10} {'n':>5} {'macro-F1 [95% CI]':>26} {'unverified P':>22} {'unverified R':>22}")
    for corpus, entry in result["corpora"].items():
        for name in ("cv", "baseline", "context"):
            if name not in entry:
                continue
            s = entry[name]
            print(f"{corpus + ' ' + name:18} {s['n']:>5} {s['macro_f1']:.3f} [{s['macro_f1_ci'][0]:.3f}, "
                  f"{s['macro_f1_ci'][1]:.3f}]  {s['unverified_precision']:.2f} ({s['unverified_flagged']})"
                  f"  {s['unverified_recall']:.2f} ({s['unverified_n']})")
        if "context_delta" in entry:
            d = entry["context_delta"]
            print(f"{corpus + ' context - plain':18} macro-F1 {d['delta_macro_f1']:+.3f} "
                  f"[{d['ci_low']:+.3f}, {d['ci_high']:+.3f}] p={d['p_value']:.3f}")
    for name, scores in dev_scores.items():
        if scores:
            print(f"dev macro-F1 per fold ({name}): {', '.join(f'{x:.3f}' for x in scores)}")


if __name__ == "__main__":
    main()
