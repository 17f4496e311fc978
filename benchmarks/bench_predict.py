"""Predict throughput: transformers.pipeline vs the predict helper, same model, data and batch size.

    .venv/bin/python benchmarks/bench_predict.py [--model models/minilm-bundled] [--n 5000]

Prints sentences/s of each side, the ratio, label agreement with the fp32 pipeline, and the machine.
Runs on the GPU when torch sees one (both sides); the int8 and ONNX rows are CPU only.
`--texts FILE` reads the sentences (one per line) instead of splitting PolNeAR.
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
    parser.add_argument("--texts", type=Path, help="sentences, one per line (default: PolNeAR, split here)")
    parser.add_argument("--write-texts", type=Path, help="write the --n sentences here and stop")
    parser.add_argument("--name", default="predict", help="result file name under benchmarks/results/")
    args = parser.parse_args()

    if args.texts is not None:
        texts = [t for t in args.texts.read_text(encoding="utf-8").splitlines() if t.strip()][: args.n]
    else:
        texts = real_sentences(args.n)
    if args.write_texts is not None:
        args.write_texts.write_text("\n".join(texts) + "\n", encoding="utf-8")
        print(f"wrote {len(texts)} sentences to {args.write_texts}")
        return
    need_model(args.model)

    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, pipeline

    from trainer import load_classifier

    cuda = torch.cuda.is_available()
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    lengths = [len(ids) for ids in tokenizer(texts)["input_ids"]]
    print(f"{len(texts)} sentences, mean {sum(lengths) / len(lengths):.1f} tokens; batch size {args.batch_size}")
    print(machine())

    def timed(name, run):
        # Warm-up. On a GPU every new batch shape costs kernel selection the first time, so each side
        # gets one full untimed pass; on a CPU the first 256 sentences are enough.
        run(texts if cuda else texts[:256])
        if cuda:
            torch.cuda.synchronize()
        start = time.perf_counter()
        labels = run(texts)
        if cuda:
            torch.cuda.synchronize()
        seconds = time.perf_counter() - start
        print(f"{name:<38} {len(texts) / seconds:8.1f} sentences/s")
        return labels, len(texts) / seconds

    model = AutoModelForSequenceClassification.from_pretrained(args.model).eval()
    plain = pipeline("text-classification", model=model, tokenizer=tokenizer, device=0 if cuda else -1)
    base_labels, base_rate = timed(
        "transformers.pipeline (fp32)",
        lambda t: [r["label"] for r in plain(t, batch_size=args.batch_size, truncation=True, max_length=128)],
    )
    rows = {"pipeline_fp32": {"sentences_per_s": base_rate, "agreement": 1.0}}

    def helper(name: str, clf) -> None:
        labels, rate = timed(f"predict helper ({name}, sorted)",
                             lambda t: [p.label for p in clf.predict(t, batch_size=args.batch_size)])
        rows[f"helper_{name}"] = {"sentences_per_s": rate, "agreement": _agree(labels, base_labels)}
        print(f"{'':<38} x{rate / base_rate:5.2f} vs pipeline, labels equal to the fp32 pipeline: "
              f"{rows[f'helper_{name}']['agreement']:.2%}")

    clf = load_classifier(args.model)  # precision auto: bf16 weights where the hardware runs bf16
    helper(clf.backend.precision, clf)
    if clf.backend.precision == "bf16":
        clf = load_classifier(args.model, precision="bf16")
        clf.backend.model.float()  # fp32 weights under bf16 autocast: every weight cast in every batch
        helper("bf16-autocast", clf)
        helper("fp32", load_classifier(args.model, precision="fp32"))
    if not cuda:
        clf = load_classifier(args.model, precision="fp32")
        clf.backend.quantize()  # what `trainer export --format int8` models load as
        helper("int8", clf)
        helper_exports(args.model, helper)

    print()
    for name, row in rows.items():
        print(f"{name:<16} {row['sentences_per_s']:8.1f}/s  x{row['sentences_per_s'] / base_rate:5.2f} vs pipeline"
              f"  labels equal to fp32 pipeline: {row['agreement']:.2%}")
    save(args.name, {"n": len(texts), "batch_size": args.batch_size, "mean_tokens": sum(lengths) / len(lengths),
                     "threads": torch.get_num_threads(), "rows": rows})


def helper_exports(model: Path, helper) -> None:
    """The ONNX Runtime exports (`trainer export --format onnx|onnx-int8`), where onnxruntime is installed."""
    import importlib.util
    import tempfile

    from trainer import load_classifier
    from trainer.models.export import export_model

    if importlib.util.find_spec("onnxruntime") is None:
        print("onnxruntime not installed: no ONNX rows (pip install -e '.[onnx]')")
        return
    from trainer.errors import TrainerError

    with tempfile.TemporaryDirectory() as tmp:
        for fmt in ("onnx", "onnx-int8"):
            try:
                export_model(model, Path(tmp) / fmt, fmt)
            except TrainerError as error:
                print(f"no {fmt} row: {error}")
                continue
            helper(fmt, load_classifier(Path(tmp) / fmt))


def _agree(a: list[str], b: list[str]) -> float:
    return sum(x == y for x, y in zip(a, b)) / len(a)


if __name__ == "__main__":
    main()
