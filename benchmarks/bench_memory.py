"""Peak resident memory of predicting many sentences with the predict helper, streamed.

    .venv/bin/python benchmarks/bench_memory.py [--model models/minilm-bundled] [--n 100000]

Streams `n` real sentences (cycled) through `Classifier.iter_predict` and reports the peak RSS
after 10% of them and at the end: flat memory means the two are about the same.
"""

from __future__ import annotations

import argparse
import itertools
import time
from pathlib import Path

from common import ROOT, need_model, peak_rss_mb, real_sentences, save


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", type=Path, default=ROOT / "models" / "minilm-bundled")
    parser.add_argument("--n", type=int, default=100_000)
    args = parser.parse_args()
    need_model(args.model)

    from trainer import load_classifier

    pool = real_sentences(20_000)
    clf = load_classifier(args.model)
    baseline = peak_rss_mb()
    stream = itertools.islice(itertools.cycle(pool), args.n)
    start, checkpoint_rss, counts = time.perf_counter(), None, {}
    for i, prediction in enumerate(clf.iter_predict(stream, batch_size=32), start=1):
        counts[prediction.label] = counts.get(prediction.label, 0) + 1
        if i == args.n // 10:
            checkpoint_rss = peak_rss_mb()
    seconds = time.perf_counter() - start
    final = peak_rss_mb()
    print(f"{args.n} sentences in {seconds:.0f}s ({args.n / seconds:.0f}/s); labels {counts}")
    print(f"peak RSS: {baseline:.0f} MB after loading, {checkpoint_rss:.0f} MB after {args.n // 10}, {final:.0f} MB at the end")
    save("memory", {"n": args.n, "seconds": seconds, "rss_mb": {"loaded": baseline, "tenth": checkpoint_rss, "end": final},
                    "precision": clf.backend.precision})


if __name__ == "__main__":
    main()
