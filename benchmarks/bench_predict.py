"""Predict throughput: transformers.pipeline vs the predict helper, same model, data and batch size.

    .venv/bin/python benchmarks/bench_predict.py [--model models/minilm-bundled] [--n 5000] [--compile]

Prints sentences/s of each path, its ratio to the fp32 pipeline, its share of the machine's measured
peak (benchmarks/peak.py), label agreement with the fp32 pipeline, and the machine. All paths are
timed in the same process, interleaved: each of `--rounds` rounds runs every path on the next slice
of the sentences, so a burst of load from other processes falls on all of them alike.

Paths: the pipeline (fp32); the helper on the trained folder (`auto`, fp32); the `int8` export loaded
with `auto` (what ships: the choice is printed); the same with a token budget per batch; torch's
dynamic int8; with `--compile` the int8 and bf16 models under `torch.compile`; the ONNX exports.
Runs on the GPU when torch sees one (pipeline and helper only). `--texts FILE` reads the sentences
(one per line) instead of splitting PolNeAR.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from common import ROOT, load_line, machine, need_model, real_sentences, save
from peak import describe, limit, measure, model_flops

Labels = list[str]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", type=Path, default=ROOT / "models" / "minilm-bundled")
    parser.add_argument("--n", type=int, default=5000)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (each path gets n / rounds a round)")
    parser.add_argument("--token-budget", type=int, default=2048, help="padded tokens per batch, for that row")
    parser.add_argument("--compile", action="store_true",
                        help="also time torch.compile rows (about a minute of compiling)")
    parser.add_argument("--no-onnx", action="store_true", help="skip the ONNX export rows")
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
    from trainer.models.export import export_model

    cuda = torch.cuda.is_available()
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    lengths = [len(ids) for ids in tokenizer(texts, truncation=True, max_length=128)["input_ids"]]
    load_before = load_line("before")
    print(f"{len(texts)} sentences, mean {sum(lengths) / len(lengths):.1f} tokens; batch size {args.batch_size}")
    print(machine())
    print(load_before)
    peak = measure()
    print(describe(peak))

    paths: dict[str, Callable[[list[str]], Labels]] = {}
    chosen: dict[str, str] = {}
    model = AutoModelForSequenceClassification.from_pretrained(args.model).eval()
    plain = pipeline("text-classification", model=model, tokenizer=tokenizer, device=0 if cuda else -1)
    paths["pipeline_fp32"] = lambda t: [r["label"] for r in plain(t, batch_size=args.batch_size, truncation=True,
                                                                  max_length=128)]

    def helper(name: str, clf) -> None:
        paths[name] = lambda t: [p.label for p in clf.predict(t, batch_size=args.batch_size)]
        chosen[name] = clf.backend.precision

    auto = load_classifier(args.model)  # a trained folder: bf16 weights where the hardware runs bf16
    helper(f"helper_{auto.backend.precision}_auto", auto)
    if auto.backend.precision != "fp32":
        helper("helper_fp32", load_classifier(args.model, precision="fp32"))
    tmp = tempfile.TemporaryDirectory()
    if not cuda:
        int8_dir = Path(tmp.name) / "int8"
        export_model(args.model, int8_dir, "int8")
        shipped = load_classifier(int8_dir)  # `precision: auto` on the int8 export: int8 where it pays
        print(f"int8 export, precision auto: {shipped.backend.precision_choice}")
        helper(f"int8_export_auto_{shipped.backend.precision}", shipped)
        budget = load_classifier(int8_dir)
        budget.backend.token_budget = args.token_budget
        helper(f"int8_export_auto_tokens{args.token_budget}", budget)
        dynamic = load_classifier(args.model, precision="fp32")
        dynamic.backend.quantize()  # torch's dynamic int8 (what `trainer export --format int8` made before)
        helper("torch_dynamic_int8", dynamic)
        chosen["torch_dynamic_int8"] = "int8-dynamic"  # every product in int8
        if args.compile:
            compiled_rows(args, int8_dir, helper)
        if not args.no_onnx:
            onnx_rows(args.model, Path(tmp.name), helper)

    # Warm-up: on a GPU every new batch shape costs kernel selection, so each path gets a full pass there.
    for run in paths.values():
        run(texts if cuda else texts[:256])
    seconds = {name: 0.0 for name in paths}
    labels: dict[str, Labels] = {name: [] for name in paths}
    edges = [len(texts) * r // args.rounds for r in range(args.rounds + 1)]
    for start, end in zip(edges, edges[1:]):
        for name, run in paths.items():
            if cuda:
                torch.cuda.synchronize()
            begin = time.perf_counter()
            labels[name] += run(texts[start:end])
            if cuda:
                torch.cuda.synchronize()
            seconds[name] += time.perf_counter() - begin
    load_after = load_line("after")

    config = model.config
    flops = model_flops(config, lengths) / len(texts)  # per sentence, real tokens only
    ffn_down = 2 * config.hidden_size * config.intermediate_size * config.num_hidden_layers  # per token
    ffn_down *= sum(lengths) / len(texts)
    base_rate = len(texts) / seconds["pipeline_fp32"]
    rows = {}
    print(f"\n{'path':<30} {'sent/s':>8} {'x pipeline':>10} {'GFLOP/s':>8} {'of peak':>8}  labels = fp32 pipeline")
    for name in paths:
        rate = len(texts) / seconds[name]
        precision = chosen.get(name, "fp32")
        # the int8 export keeps the feed-forward down-projections (a third of the products) in bf16, onnx-int8 in fp32
        kept = {"int8": "bf16", "onnx-int8": "fp32"}.get(precision)
        dtype = {"bf16": "bf16", "fp32": "fp32", "onnx-fp32": "fp32"}.get(precision, "int8")
        split = {"int8": flops - ffn_down, kept: ffn_down} if kept else {dtype: flops}
        ceiling = limit(peak, split)
        gflops = rate * flops / 1e9
        agreement = _agree(labels[name], labels["pipeline_fp32"])
        rows[name] = {"sentences_per_s": rate, "ratio": rate / base_rate, "agreement": agreement,
                      "precision": precision, "gflops": gflops, "limit_gflops": ceiling, "share_of_peak": gflops / ceiling}
        print(f"{name:<30} {rate:8.1f} {rate / base_rate:9.2f}x {gflops:8.1f} {gflops / ceiling:8.1%}  {agreement:.2%}")
    print(f"(peak for each path: its arithmetic at the measured peak; int8 with its bf16 third)\n{load_after}")
    save(args.name, {"n": len(texts), "batch_size": args.batch_size, "mean_tokens": sum(lengths) / len(lengths),
                     "flops_per_sentence": flops, "threads": torch.get_num_threads(), "rounds": args.rounds,
                     "peak": peak, "load": [load_before, load_after], "chosen": chosen, "rows": rows})
    tmp.cleanup()


def compiled_rows(args, int8_dir: Path, helper) -> None:
    """torch.compile (inductor, weights frozen) of the int8 export and the bf16 folder: compile time printed."""
    import torch
    import torch._inductor.config as inductor

    from trainer import load_classifier

    inductor.freezing = True
    for name, clf in (("int8_compiled", load_classifier(int8_dir)), ("bf16_compiled", load_classifier(args.model))):
        clf.backend.model.set_attn_implementation("eager")  # inductor fuses the plain attention better than sdpa's
        clf.backend.model = torch.compile(clf.backend.model, dynamic=True)
        start = time.perf_counter()
        clf.predict(["Shares rose.", "The minister said the talks had failed."] * 16, batch_size=args.batch_size)
        print(f"{name}: compiled in {time.perf_counter() - start:.1f} s")
        helper(name, clf)


def onnx_rows(model: Path, tmp: Path, helper) -> None:
    """The ONNX Runtime exports (`trainer export --format onnx|onnx-int8`), where onnxruntime is installed."""
    import importlib.util

    from trainer import load_classifier
    from trainer.errors import TrainerError
    from trainer.models.export import export_model

    if importlib.util.find_spec("onnxruntime") is None:
        print("onnxruntime not installed: no ONNX rows (pip install -e '.[onnx]')")
        return
    for fmt in ("onnx", "onnx-int8"):
        try:
            export_model(model, tmp / fmt, fmt)
        except TrainerError as error:
            print(f"no {fmt} row: {error}")
            continue
        helper(fmt.replace("-", "_"), load_classifier(tmp / fmt))


def _agree(a: Labels, b: Labels) -> float:
    return sum(x == y for x, y in zip(a, b)) / len(a)


if __name__ == "__main__":
    main()
