"""Tagging and training on one GPU: the pipeline, the project's path, and what bounds them.

    .venv/bin/python benchmarks/bench_gpu.py [--model models/minilm-bundled] [--n 200000] [--texts FILE]

Prints sentences/s of
- `transformers.pipeline`, fp32, batch 32 (on `--pipeline-n` sentences: it is slow);
- the project's path (`Classifier.predict`: bf16, SDPA, token-budget batches, tokenising in worker
  processes overlapped with the GPU, `models/streaming.py`), on all `--n` sentences;
- tokenisation alone, in the same worker processes (the end-to-end ceiling when the model waits);
- the model step alone, input already tokenised and on the GPU, with its share of the GPU's bf16
  peak (a measured bf16 matrix product);
- label agreement of the project's path with the fp32 pipeline;
- training: the project's loop in bf16 (`--train-steps` steps of `--batch-size`), examples/s.

A machine without CUDA gets one line saying so, and exit code 1. The sentences are PolNeAR's when
../shared/corpora is there, else `--texts FILE` (one per line; write it with bench_predict.py
--write-texts on a machine that has the corpus).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from common import ROOT, load_line, machine, need_model, real_sentences, save


def gpu_or_exit() -> None:
    try:
        import torch
    except ImportError:
        sys.exit("bench_gpu: torch is not installed; see docs/how-to/gpu.md")
    if not torch.cuda.is_available():
        sys.exit(f"bench_gpu: no CUDA device (torch {torch.__version__} sees none); run it on a machine with an "
                 "NVIDIA GPU and a CUDA build of torch (docs/how-to/gpu.md)")


def timed(fn, sync) -> float:
    sync()
    start = time.perf_counter()
    fn()
    sync()
    return time.perf_counter() - start


def bf16_peak_tflops(torch) -> float:
    """A large bf16 matrix product's rate: what this GPU really does, in TFLOP/s."""
    size = 8192
    a = torch.randn(size, size, device="cuda", dtype=torch.bfloat16)
    b = torch.randn(size, size, device="cuda", dtype=torch.bfloat16)
    for _ in range(3):
        a @ b
    seconds = timed(lambda: [a @ b for _ in range(20)], torch.cuda.synchronize)
    return 20 * 2 * size**3 / seconds / 1e12


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", type=Path, default=ROOT / "models" / "minilm-bundled")
    parser.add_argument("--n", type=int, default=200_000)
    parser.add_argument("--pipeline-n", type=int, default=20_000)
    parser.add_argument("--texts", type=Path, help="sentences, one per line (default: PolNeAR, split here)")
    parser.add_argument("--workers", type=int, default=None, help="tokenising processes (default: cores - 1)")
    parser.add_argument("--train-steps", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--name", default="gpu")
    args = parser.parse_args()
    gpu_or_exit()
    need_model(args.model)

    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, pipeline

    from peak import model_flops
    from trainer import load_classifier
    from trainer.models import streaming

    if args.texts is not None:
        texts = [t for t in args.texts.read_text(encoding="utf-8").splitlines() if t.strip()][: args.n]
    else:
        texts = real_sentences(args.n)
    texts = (texts * (args.n // max(len(texts), 1) + 1))[: args.n]
    sync = torch.cuda.synchronize
    print(machine())
    print(load_line("before"))
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    lengths = [len(ids) for ids in tokenizer(texts[:20_000], truncation=True, max_length=128)["input_ids"]]
    print(f"{len(texts)} sentences, mean {sum(lengths) / len(lengths):.1f} tokens")
    rows: dict[str, dict[str, float]] = {}

    # 1. the pipeline, fp32, batch 32
    model = AutoModelForSequenceClassification.from_pretrained(args.model).eval()
    plain = pipeline("text-classification", model=model, tokenizer=tokenizer, device=0)
    subset = texts[: args.pipeline_n]
    run_pipeline = lambda: [r["label"] for r in plain(subset, batch_size=32, truncation=True, max_length=128)]
    run_pipeline()  # warm-up: kernel selection for every shape
    seconds = timed(run_pipeline, sync)
    reference = run_pipeline()
    rows["pipeline_fp32"] = {"sentences_per_s": len(subset) / seconds}
    del plain, model
    torch.cuda.empty_cache()

    # 2. the project's path, end to end
    clf = load_classifier(args.model)
    print(f"project path: {clf.backend.precision_choice}, attention {clf.backend.model.config._attn_implementation}")
    clf.predict(texts[:50_000])  # warm-up
    labels: list[str] = []
    seconds = timed(lambda: labels.extend(p.label for p in clf.predict(texts)), sync)
    rows["project"] = {"sentences_per_s": len(texts) / seconds}
    agree = sum(a == b for a, b in zip(labels, reference)) / len(reference)
    rows["project"]["agreement_with_pipeline_fp32"] = agree

    # 3. tokenisation alone, in the same worker processes
    dataset = streaming.TokenizedBlocks(texts, clf.backend.tokenizer, clf.backend.max_length, streaming.GPU_TOKEN_BUDGET)
    workers = streaming.default_workers() if args.workers is None else args.workers
    loader = torch.utils.data.DataLoader(dataset, batch_size=None, num_workers=workers, pin_memory=True,
                                         worker_init_fn=streaming.worker_init,
                                         prefetch_factor=streaming.PREFETCH_BLOCKS if workers else None)
    blocks: list = []
    seconds = timed(lambda: blocks.extend(loader), sync)
    rows["tokenization_alone"] = {"sentences_per_s": len(texts) / seconds, "workers": workers}

    # 4. the model step alone, inputs already on the GPU
    batches = [(ids.cuda(), mask.cuda()) for block in blocks for _, ids, mask in block["batches"]]
    forward = clf.backend.forward

    def model_step() -> None:
        with torch.inference_mode():
            for ids, mask in batches:
                forward({"input_ids": ids, "attention_mask": mask})

    model_step()
    seconds = timed(model_step, sync)
    peak = bf16_peak_tflops(torch)
    flops = model_flops(clf.backend.model.config, lengths) / len(lengths) * len(texts)
    rows["model_step_alone"] = {"sentences_per_s": len(texts) / seconds, "tflops": flops / seconds / 1e12,
                                "bf16_peak_tflops": peak, "share_of_peak": flops / seconds / 1e12 / peak}
    if args.train_steps:
        rows["training_bf16"] = {"examples_per_s": training_rate(texts, args.train_steps, args.batch_size)}

    base = rows["pipeline_fp32"]["sentences_per_s"]
    print(f"\n{'path':<22} {'sent/s':>9} {'x pipeline':>10}")
    for name, row in rows.items():
        rate = row.get("sentences_per_s", row.get("examples_per_s"))
        ratio = f"{rate / base:9.1f}x" if "sentences_per_s" in row else f"{'':>10}"
        extra = {k: round(v, 4) for k, v in row.items() if k not in ("sentences_per_s", "examples_per_s")}
        print(f"{name:<22} {rate:9.0f} {ratio}  {extra or ''}")
    print(load_line("after"))
    save(args.name, {"n": len(texts), "pipeline_n": len(subset), "rows": rows})


def training_rate(texts: list[str], steps: int, batch_size: int) -> float:
    """The project's loop (bf16 autocast on the GPU) on all-MiniLM-L6-v2 with a new head: examples/s."""
    import torch

    from trainer.config import TrainingConfig, TransformerModel
    from trainer.data.rules import RuleLabeler, rules_path
    from trainer.models.loop import StepDone
    from trainer.models.transformer import TransformerBackend

    sample = texts[: steps * batch_size]
    labeler = RuleLabeler.from_yaml(rules_path(None))
    labels = [labeler.label(t).label for t in sample]
    training = TrainingConfig(batch_size=batch_size, epochs=2, max_steps=steps + 20, device="cuda")
    backend = TransformerBackend.from_config(TransformerModel(), training)
    print(f"training in {backend.precision} on {backend.device}")
    events = iter(backend.training_loop(sample, labels))
    for _ in range(20):  # warm-up steps
        next(events)
    torch.cuda.synchronize()
    start = time.perf_counter()
    done = 0
    for event in events:
        done += isinstance(event, StepDone)
        if done >= steps - 1:
            break
    torch.cuda.synchronize()
    return done * batch_size / (time.perf_counter() - start)


if __name__ == "__main__":
    main()
