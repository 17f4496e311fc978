"""Corpus tagging: `trainer tag` end to end (read, clean, split, predict, rule cues, write Parquet)
against the model alone on the same sentences, in one process; then peak memory for 100,000 sentences.

    .venv/bin/python benchmarks/bench_tag.py [--model models/minilm-bundled] [--copies 4]

Prints both rates, the end-to-end rate as a share of the model-only rate, and the machine.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import POLNEAR, ROOT, machine, need_model, peak_rss_mb, save


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", type=Path, default=ROOT / "models" / "minilm-bundled")
    parser.add_argument("--copies", type=int, default=4, help="PolNeAR copies for the memory run (4: about 123,000 sentences)")
    parser.add_argument("--memory-only", type=Path, help=argparse.SUPPRESS)  # the child process of the memory run
    args = parser.parse_args()
    need_model(args.model)

    from trainer import load_classifier
    from trainer.tagging import read_tables, tag

    if args.memory_only:
        result = tag(args.model, args.memory_only, args.memory_only.parent / "out", progress=False)
        print(f"{result.sentences} {peak_rss_mb():.0f}")
        return

    print(machine())
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out"
        start = time.perf_counter()
        result = tag(args.model, POLNEAR, out, progress=False)
        end_to_end = time.perf_counter() - start
        texts = [t for t in read_tables(out)["text"]]
        classifier = load_classifier(args.model)
        classifier.predict(texts[:256])  # warm-up, as the tag run's first part had
        start = time.perf_counter()
        sum(1 for _ in classifier.iter_predict(iter(texts)))
        model_only = time.perf_counter() - start
    e2e_rate, model_rate = result.sentences / end_to_end, len(texts) / model_only
    print(f"trainer tag, end to end: {result.articles} articles, {result.sentences} sentences in {end_to_end:.1f} s: "
          f"{e2e_rate:.0f} sentences/s")
    print(f"the model alone on the same sentences: {model_only:.1f} s: {model_rate:.0f} sentences/s")
    print(f"end to end / model only: {e2e_rate / model_rate:.1%}")

    with tempfile.TemporaryDirectory() as tmp:  # peak memory of a large run, in a fresh process
        corpus = Path(tmp) / "corpus"
        corpus.mkdir()
        for copy in range(args.copies):
            for path in sorted(POLNEAR.glob("*.txt")):
                shutil.copyfile(path, corpus / f"{copy}-{path.name}")
        done = subprocess.run([sys.executable, __file__, "--model", str(args.model), "--memory-only", str(corpus)],
                              capture_output=True, text=True, check=True)
        sentences, rss = done.stdout.split()[-2:]
    print(f"memory: {sentences} sentences tagged at a peak RSS of {rss} MB")
    save("tag", {"articles": result.articles, "sentences": result.sentences, "end_to_end_s": end_to_end,
                 "model_only_s": model_only, "share_of_model_rate": e2e_rate / model_rate,
                 "memory": {"sentences": int(sentences), "peak_rss_mb": float(rss)}})


if __name__ == "__main__":
    main()
