"""Proof by simulation: do the intervals of `trainer summarize --audit` hold the true label shares?

    .venv/bin/python benchmarks/bench_ppi.py --model models/minilm-bundled [--draws 500] [--audits 200 400]

The corpus is labeled real news, so its gold shares are the truth: the project's real-news labels
(configs/data/real-news.yaml, 2,628 PolNeAR and seed sentences; the model was trained on the bundled
corpus only, so these outlets differ from its training data), and the dev set's Reuters sentences
(../shared/devset/real-news-dev.jsonl, 242 sentences, a second set of outlets; audits of more than half a
corpus would cover its truth by construction, so it gets audits of a quarter and a half of it). The
model predicts every sentence;
each draw audits a simple random sample of the corpus. Per label and audit size the table gives the
share of draws whose 95% interval covered the truth, for PPI (ppi-python, PPI++), the audit alone
(Wilson) and classify-and-count (the model's labels, bootstrap over articles: one interval, so 0 or
1), PPI's mean width over the audit's, and the draws that contained the label yet printed 0.0%.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from common import ROOT, random_halves, save

DEV = ROOT.parent / "shared" / "devset" / "real-news-dev.jsonl"


def corpora() -> dict[str, tuple[list[str], np.ndarray]]:
    """Name -> (sentences, gold label ids) of each labeled corpus."""
    from trainer.config import load_data_config
    from trainer.data.sources import read_source
    from trainer.labels import LABELS

    examples = [e for s in load_data_config(ROOT / "configs" / "data" / "real-news.yaml").sources
                for e in read_source(s, progress=False).examples]
    gold = np.array([LABELS.index(e.label) for e in examples])
    out = {"real-news (PolNeAR + seed)": ([e.text for e in examples], gold)}
    dev = [json.loads(line) for line in DEV.read_text(encoding="utf-8").splitlines() if line.strip()]
    reuters = [r for r in dev if r["source"] == "reuters"]
    out["dev reuters"] = ([r["text"] for r in reuters], np.array([LABELS.index(r["label"]) for r in reuters]))
    out.update(news_outlets())
    return out


def news_outlets() -> dict[str, tuple[list[str], np.ndarray]]:
    """The uniformly random halves of the news-outlets labels (data/real-news/README.md), one corpus each:
    proportional stratified samples of AllSides, BBC and the Syrian-war corpus, so a simulated audit of them
    behaves as an audit of those corpora would (the real-news labels above were chosen by uncertainty)."""
    from trainer.labels import LABELS

    return {f"{name} (random half)": ([text for _, text, _ in rows], np.array([LABELS.index(y) for _, _, y in rows]))
            for name, rows in random_halves().items()}


def stratified(draws: int, seed: int = 0) -> dict[str, float]:
    """Coverage of the weighted estimators over a corpus's share from a stratified audit whose inclusion
    probabilities differ tenfold: a synthetic corpus (stratum A: 20,000 sentences, 10% of the label, a
    good model; B: 2,000, 40%, a poor one), 100 audited from each, weights 1 / inclusion probability."""
    from trainer.estimators import hand_share, ppi_share

    rng = np.random.default_rng(seed)
    sizes, shares, separation, noise = (20_000, 2_000), (0.10, 0.40), ((0.7, 0.1), (0.5, 0.3)), (0.1, 0.2)
    y = np.concatenate([(rng.random(n) < q).astype(float) for n, q in zip(sizes, shares, strict=True)])
    parts = []
    for stratum, n in enumerate(sizes):
        labels = y[sum(sizes[:stratum]): sum(sizes[:stratum]) + n]
        high, low = separation[stratum]
        parts.append(np.clip(np.where(labels == 1, high, low) + rng.normal(0, noise[stratum], n), 0, 1))
    f = np.concatenate(parts)
    truth = float(y.mean())
    hits = {"ppi": 0, "hand": 0}
    widths = {"ppi": 0.0, "hand": 0.0}
    for _ in range(draws):
        idx = np.concatenate([rng.choice(sizes[0], 100, replace=False),
                              sizes[0] + rng.choice(sizes[1], 100, replace=False)])
        weights = np.concatenate([np.full(100, sizes[0] / 100), np.full(100, sizes[1] / 100)])
        for e in (ppi_share(y[idx], f[idx], f, weights), hand_share(y[idx], weights)):
            hits[e.estimator] += int(e.low <= truth <= e.high)
            widths[e.estimator] += e.high - e.low
    return {"truth": truth, **{f"{k}_coverage": v / draws for k, v in hits.items()},
            "width_ratio": widths["ppi"] / widths["hand"]}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", type=Path, required=True, help="the model that tags the corpus")
    parser.add_argument("--draws", type=int, default=500)
    parser.add_argument("--audits", type=int, nargs="+", default=[200, 400])
    args = parser.parse_args()
    from trainer.estimators import simulate
    from trainer.workflows.predict import load_classifier

    classifier = load_classifier(args.model)
    results = []
    print(f"{'corpus':28} {'label':11} {'audit':>5} {'truth':>6} {'PPI':>6} {'hand':>6} {'CC':>4} "
          f"{'PPI/hand width':>14} {'0.0%':>5}")
    for name, (texts, gold) in corpora().items():
        probabilities = np.array([list(p.probabilities.values()) for p in classifier.predict(texts)])
        accuracy = float((probabilities.argmax(axis=1) == gold).mean())
        # an audit of most of a small corpus covers the truth by construction: such a corpus gets audits of
        # a quarter and a half of it instead
        sizes = [a for a in args.audits if a <= len(gold) // 2] or [len(gold) // 4, len(gold) // 2]
        for audit in sizes:
            for c in simulate(gold, probabilities, audit, args.draws):
                ratio = c.width["ppi"] / c.width["hand"]
                print(f"{name:28} {c.label:11} {audit:>5} {c.truth:>6.1%} {c.coverage['ppi']:>6.1%} "
                      f"{c.coverage['hand']:>6.1%} {c.coverage['cc']:>4.0f} {ratio:>14.2f} {c.zero_printed:>5}")
                results.append({"corpus": name, "sentences": len(gold), "model_accuracy": accuracy, **vars(c)})
    weighted = stratified(args.draws)
    print(f"\nstratified audit, weighted (synthetic corpus, truth {weighted['truth']:.1%}): PPI covers "
          f"{weighted['ppi_coverage']:.1%}, the audit alone {weighted['hand_coverage']:.1%}; PPI width / audit's "
          f"{weighted['width_ratio']:.2f}")
    save("ppi", {"model": str(args.model), "draws": args.draws, "results": results, "stratified": weighted})


if __name__ == "__main__":
    main()
