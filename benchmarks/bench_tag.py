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

from common import POLNEAR, ROOT, load_line, machine, need_model, peak_rss_mb, save
from peak import describe, limit, measure, model_flops


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", type=Path, default=ROOT / "models" / "minilm-bundled")
    parser.add_argument("--copies", type=int, default=4, help="PolNeAR copies for the memory run (4: about 123,000 sentences)")
    parser.add_argument("--memory-only", type=Path, help=argparse.SUPPRESS)  # the child process of the memory run
    args = parser.parse_args()
    need_model(args.model)

    from trainer import load_classifier
    from trainer.workflows.tagging import read_tables, tag

    if args.memory_only:
        result = tag(args.model, args.memory_only, args.memory_only.parent / "out", progress=False)
        print(f"{result.sentences} {peak_rss_mb():.0f}")
        return

    print(machine())
    load_before = load_line("before")
    print(load_before)
    peak = measure()
    print(describe(peak))
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
        tokenizer = classifier.backend.tokenizer
        lengths = [len(ids) for ids in tokenizer(texts, truncation=True, max_length=128)["input_ids"]]
        flops = model_flops(classifier.backend.model.config, lengths)
        precision = classifier.backend.precision
    e2e_rate, model_rate = result.sentences / end_to_end, len(texts) / model_only
    print(f"trainer tag, end to end: {result.articles} articles, {result.sentences} sentences in {end_to_end:.1f} s: "
          f"{e2e_rate:.0f} sentences/s")
    print(f"the model alone on the same sentences: {model_only:.1f} s: {model_rate:.0f} sentences/s")
    print(f"end to end / model only: {e2e_rate / model_rate:.1%}")
    ceiling = limit(peak, {precision if precision in ("bf16", "fp32") else "int8": 1.0})
    gflops = {"end_to_end": flops / end_to_end / 1e9, "model_only": flops / model_only / 1e9}
    print(f"model ({precision}): {gflops['model_only']:.0f} GFLOP/s, {gflops['model_only'] / ceiling:.1%} of the "
          f"{precision} peak; end to end {gflops['end_to_end']:.0f} GFLOP/s, {gflops['end_to_end'] / ceiling:.1%}")
    load_after = load_line("after")
    print(load_after)

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
                 "memory": {"sentences": int(sentences), "peak_rss_mb": float(rss)}, "precision": precision,
                 "peak": peak, "gflops": gflops, "share_of_peak": {k: v / ceiling for k, v in gflops.items()},
                 "load": [load_before, load_after]})


if __name__ == "__main__":
    main()
