"""Predict throughput: transformers.pipeline vs the predict helper, same model, data and batch size.

    .venv/bin/python benchmarks/bench_predict.py [--model models/minilm-bundled] [--n 5000]

Prints sentences/s of each side, the ratio, label agreement with the fp32 pipeline, and the machine.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from common import ROOT, machine, need_model, real_sentences, save


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", type=Path, default=ROOT / "models" / "minilm-bundled")
    parser.add_argument("--n", type=int, default=5000)
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()
    need_model(args.model)

    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, pipeline

    from trainer import load_classifier

    texts = real_sentences(args.n)
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    lengths = [len(ids) for ids in tokenizer(texts)["input_ids"]]
    print(f"{len(texts)} sentences, mean {sum(lengths) / len(lengths):.1f} tokens; batch size {args.batch_size}")
    print(machine())

    def timed(name, run):
        run(texts[:64])  # warm-up
        start = time.perf_counter()
        labels = run(texts)
        seconds = time.perf_counter() - start
        print(f"{name:<34} {len(texts) / seconds:8.1f} sentences/s")
        return labels, len(texts) / seconds

    model = AutoModelForSequenceClassification.from_pretrained(args.model).eval()
    plain = pipeline("text-classification", model=model, tokenizer=tokenizer, device=-1)
    base_labels, base_rate = timed(
        "transformers.pipeline (fp32)",
        lambda t: [r["label"] for r in plain(t, batch_size=args.batch_size, truncation=True, max_length=128)],
    )

    clf = load_classifier(args.model)
    rows = {"pipeline_fp32": {"sentences_per_s": base_rate, "agreement": 1.0}}
    precision = clf.backend.precision
    ours_labels, ours_rate = timed(
        f"predict helper ({precision}, sorted)", lambda t: [p.label for p in clf.predict(t, batch_size=args.batch_size)]
    )
    rows[f"helper_{precision}"] = {"sentences_per_s": ours_rate, "agreement": _agree(ours_labels, base_labels)}

    clf.backend.quantize()  # what `trainer export` models load as
    int8_labels, int8_rate = timed(
        "predict helper (int8 dynamic, sorted)", lambda t: [p.label for p in clf.predict(t, batch_size=args.batch_size)]
    )
    rows["helper_int8"] = {"sentences_per_s": int8_rate, "agreement": _agree(int8_labels, base_labels)}

    print()
    for name, row in rows.items():
        print(f"{name:<16} {row['sentences_per_s']:8.1f}/s  x{row['sentences_per_s'] / base_rate:4.2f} vs pipeline"
              f"  labels equal to fp32 pipeline: {row['agreement']:.2%}")
    save("predict", {"n": len(texts), "batch_size": args.batch_size, "mean_tokens": sum(lengths) / len(lengths),
                     "threads": torch.get_num_threads(), "rows": rows})


def _agree(a: list[str], b: list[str]) -> float:
    return sum(x == y for x, y in zip(a, b)) / len(a)


if __name__ == "__main__":
    main()
