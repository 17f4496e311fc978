"""Dataset-building throughput by stage: cleaning, sentence splitting, rule labeling.

    .venv/bin/python benchmarks/bench_build.py [--articles 840]

Reads PolNeAR's raw texts (or the bundled corpus when PolNeAR is absent), one process. Prints
sentences/s overall and the time spent in each stage, against the naive alternative for splitting
(a regex split on '. ') for scale.
"""

from __future__ import annotations

import argparse
import re
import time

from common import POLNEAR, ROOT, machine, save


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--articles", type=int, default=840)
    args = parser.parse_args()

    from trainer.data.cleaning import clean_article
    from trainer.data.rules import DEFAULT_RULES, RuleLabeler
    from trainer.data.sentences import split_sentences

    folder = POLNEAR if POLNEAR.is_dir() else ROOT / "data" / "corpus" / "articles"
    texts = [p.read_text(encoding="utf-8") for p in sorted(folder.glob("*.txt"))[: args.articles]]
    labeler = RuleLabeler.from_yaml(DEFAULT_RULES)
    print(machine())

    start = time.perf_counter()
    cleaned = [clean_article(t).paragraphs for t in texts]
    t_clean = time.perf_counter() - start

    start = time.perf_counter()
    sentences = [s for paragraphs in cleaned for p in paragraphs for s in split_sentences(p)]
    t_split = time.perf_counter() - start

    start = time.perf_counter()
    naive = [s for paragraphs in cleaned for p in paragraphs for s in re.split(r"(?<=[.!?])\s+", p) if s]
    t_naive = time.perf_counter() - start

    start = time.perf_counter()
    for sentence in sentences:
        labeler.label(sentence)
    t_rules = time.perf_counter() - start

    total = t_clean + t_split + t_rules
    n = len(sentences)
    print(f"{len(texts)} articles, {n} sentences from {folder}")
    print(f"cleaning       {t_clean:6.2f}s")
    print(f"splitting      {t_split:6.2f}s   (naive regex split: {t_naive:.2f}s, {len(naive)} pieces)")
    print(f"rule labeling  {t_rules:6.2f}s")
    print(f"overall        {n / total:8.0f} sentences/s in one process")
    save("build", {"articles": len(texts), "sentences": n, "seconds": {"cleaning": t_clean, "splitting": t_split,
                   "rules": t_rules, "naive_split": t_naive}, "sentences_per_s": n / total})


if __name__ == "__main__":
    main()
