"""Training throughput: transformers.Trainer (default TrainingArguments) vs the project's loop.

    .venv/bin/python benchmarks/bench_train.py [--epochs 3] [--batch-size 32] [--seeds 13 14 15]

Same model (all-MiniLM-L6-v2), same bundled train split, batch size, epochs, learning rate and
seeds. Prints examples/s of each side, the ratio, validation macro-F1 of each seed, peak memory and
the machine. Runs on the GPU when torch sees one (Trainer picks it too).

For a machine without the project's data stack (the lent GPU machine), `--write-split FILE` saves
the split here and `--split-file FILE` reads it there; `--pretrained` points at the encoder.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

from common import ROOT, load_line, machine, paired_interval, peak_rss_mb, save
from peak import describe, measure, model_flops


def load_split(split_file: Path | None) -> dict[str, tuple[list[str], list[str]]]:
    """{split: (texts, labels)} for train and validation of the bundled corpus."""
    if split_file is not None:
        rows = [json.loads(line) for line in split_file.read_text(encoding="utf-8").splitlines() if line.strip()]
        return {s: ([r["text"] for r in rows if r["split"] == s], [r["label"] for r in rows if r["split"] == s])
                for s in ("train", "validation")}
    from trainer.config import load_data_config
    from trainer.data.build import build_dataset

    os.chdir(ROOT)  # the data config's paths are relative to the repository root
    built = build_dataset(load_data_config(ROOT / "configs" / "data" / "bundled.yaml"), progress=False)
    out = {}
    for split in ("train", "validation"):
        names = built.dataset[split].features["label"].names
        out[split] = (list(built.dataset[split]["text"]), [names[i] for i in built.dataset[split]["label"]])
    return out


def run_trainer(pretrained: str, train: tuple[list[str], list[str]], val: tuple[list[str], list[str]],
                epochs: int, batch_size: int, seed: int) -> tuple[float, float]:
    """transformers.Trainer with default TrainingArguments (only what the comparison needs set)."""
    import torch
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        DataCollatorWithPadding,
        Trainer,
        TrainingArguments,
    )

    from trainer.labels import ID2LABEL, LABEL2ID, LABELS
    from trainer.metrics import macro_f1

    torch.manual_seed(seed)
    tokenizer = AutoTokenizer.from_pretrained(pretrained)
    model = AutoModelForSequenceClassification.from_pretrained(
        pretrained, num_labels=3, id2label=dict(ID2LABEL), label2id=dict(LABEL2ID)
    )
    encoded = tokenizer(train[0], truncation=True, max_length=128)
    dataset = [{"input_ids": ids, "attention_mask": mask, "labels": LABEL2ID[y]}
               for ids, mask, y in zip(encoded["input_ids"], encoded["attention_mask"], train[1])]
    with tempfile.TemporaryDirectory() as out:
        args = TrainingArguments(
            output_dir=out, per_device_train_batch_size=batch_size, num_train_epochs=epochs, seed=seed,
            report_to=[], save_strategy="no", logging_strategy="no", disable_tqdm=True,
        )
        collator = DataCollatorWithPadding(tokenizer)
        trainer = Trainer(model=model, args=args, train_dataset=dataset, data_collator=collator)
        _sync()
        start = time.perf_counter()
        trainer.workflows.train()
        _sync()
        seconds = time.perf_counter() - start
    model.eval()
    with torch.inference_mode():
        logits = [model(**tokenizer(val[0][i:i + 64], padding=True, truncation=True, max_length=128,
                                    return_tensors="pt").to(model.device)).logits.float().cpu()
                  for i in range(0, len(val[0]), 64)]
    f1 = macro_f1(val[1], [LABELS[i] for i in torch.cat(logits).argmax(-1).tolist()])
    return len(train[0]) * epochs / seconds, f1


def run_project(pretrained: str, train: tuple[list[str], list[str]], val: tuple[list[str], list[str]],
                epochs: int, batch_size: int, seed: int, length_group: int, precision: str = "auto"):
    """The project's loop: pre-tokenised, length-grouped batches, bf16 where native."""
    from trainer.config import TrainingConfig, TransformerModel
    from trainer.metrics import macro_f1
    from trainer.models.transformer import TransformerBackend

    # Trainer's defaults where the two differ: learning rate 5e-5, no warmup, no weight decay, no
    # class weights; the project keeps no best epoch either (patience high, validation not passed in).
    training = TrainingConfig(epochs=epochs, batch_size=batch_size, early_stopping_patience=99,
                              class_weighting=False, warmup_ratio=0.0, weight_decay=0.0, learning_rate=5e-5,
                              seed=seed, length_group_batches=length_group, precision=precision)
    backend = TransformerBackend.from_config(TransformerModel(pretrained=pretrained), training)
    _sync()
    start = time.perf_counter()
    backend.fit(*train)
    _sync()
    seconds = time.perf_counter() - start
    f1 = macro_f1(val[1], backend.predict_labels(val[0]))
    return len(train[0]) * epochs / seconds, f1, backend


def _sync() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seeds", type=int, nargs="+", default=[13])
    parser.add_argument("--pretrained", help="encoder path (default: the bundled all-MiniLM-L6-v2)")
    parser.add_argument("--split-file", type=Path, help="read train/validation from this JSONL")
    parser.add_argument("--write-split", type=Path, help="write the bundled train/validation split here and stop")
    parser.add_argument("--save-model", type=Path, help="save the project's model of the first seed here")
    parser.add_argument("--length-group", type=int, help="the project's training.length_group_batches (default: "
                        "a quarter of the train split per mega-batch, as Trainer's group_by_length mixes)")
    parser.add_argument("--precision", default="auto", help="the project's training.precision (auto: bf16 where native)")
    parser.add_argument("--name", default="train", help="result file name under benchmarks/results/")
    args = parser.parse_args()

    data = load_split(args.split_file)
    if args.write_split is not None:
        with args.write_split.open("w", encoding="utf-8") as f:
            for split, (texts, labels) in data.items():
                for text, label in zip(texts, labels):
                    f.write(json.dumps({"split": split, "text": text, "label": label}) + "\n")
        print(f"wrote {args.write_split}")
        return

    import torch

    if args.pretrained is None:
        from trainer.models.transformer import default_pretrained

        args.pretrained = default_pretrained()
    train, val = data["train"], data["validation"]
    print(machine())
    load_before = load_line("before")
    print(load_before)
    peak = measure()
    print(describe(peak))
    from transformers import AutoConfig, AutoTokenizer

    lengths = [len(ids) for ids in AutoTokenizer.from_pretrained(args.pretrained)(train[0], truncation=True,
                                                                                  max_length=128)["input_ids"]]
    flops_per_epoch = model_flops(AutoConfig.from_pretrained(args.pretrained), lengths, passes=3)
    if args.length_group is None:
        args.length_group = max(1, len(train[0]) // (4 * args.batch_size))
    print(f"{len(train[0])} training sentences, {len(val[0])} validation; {args.epochs} epoch(s), "
          f"batch size {args.batch_size}, seeds {args.seeds}")

    runs = []
    for n, seed in enumerate(args.seeds):
        hf_rate, hf_f1 = run_trainer(args.pretrained, train, val, args.epochs, args.batch_size, seed)
        ours_rate, ours_f1, backend = run_project(args.pretrained, train, val, args.epochs, args.batch_size, seed,
                                                  args.length_group, args.precision)
        if n == 0 and args.save_model is not None:
            args.save_model.mkdir(parents=True, exist_ok=True)
            backend.save(args.save_model)
        runs.append({"seed": seed, "trainer": {"examples_per_s": hf_rate, "val_macro_f1": hf_f1},
                     "project": {"examples_per_s": ours_rate, "val_macro_f1": ours_f1}})
        print(f"seed {seed}: Trainer {hf_rate:7.1f} ex/s F1 {hf_f1:.3f} | project ({backend.precision}) "
              f"{ours_rate:7.1f} ex/s F1 {ours_f1:.3f} | x{ours_rate / hf_rate:.2f}")

    def summary(side: str) -> dict[str, float]:
        rates = [r[side]["examples_per_s"] for r in runs]
        f1s = [r[side]["val_macro_f1"] for r in runs]
        return {"examples_per_s": statistics.median(rates), "val_macro_f1_mean": statistics.mean(f1s),
                "val_macro_f1_sd": statistics.stdev(f1s) if len(f1s) > 1 else 0.0}

    hf, ours = summary("trainer"), summary("project")
    ratio = ours["examples_per_s"] / hf["examples_per_s"]
    gpu_peak = torch.cuda.max_memory_allocated() / 2**20 if torch.cuda.is_available() else None
    print(f"\ntransformers.Trainer  {hf['examples_per_s']:7.1f} examples/s (median)  "
          f"validation macro-F1 {hf['val_macro_f1_mean']:.3f} ± {hf['val_macro_f1_sd']:.3f}")
    print(f"project loop ({backend.precision:>4})   {ours['examples_per_s']:7.1f} examples/s (median)  "
          f"validation macro-F1 {ours['val_macro_f1_mean']:.3f} ± {ours['val_macro_f1_sd']:.3f}")
    interval = None
    if len(runs) > 1:
        diffs = [r["project"]["val_macro_f1"] - r["trainer"]["val_macro_f1"] for r in runs]
        interval = paired_interval(diffs)
        print(f"F1 project - Trainer, paired by seed: {interval['mean']:+.3f}; 95% t-interval over {len(diffs)} seeds "
              f"[{interval['t_low']:+.3f}, {interval['t_high']:+.3f}]; paired bootstrap "
              f"[{interval['bootstrap_low']:+.3f}, {interval['bootstrap_high']:+.3f}]")
    shares = {}
    for side, rate, dtype in (("trainer", hf["examples_per_s"], "fp32"),
                              ("project", ours["examples_per_s"], "bf16" if backend.precision == "bf16" else "fp32")):
        gflops = rate / len(train[0]) * flops_per_epoch / 1e9
        shares[side] = {"gflops": gflops, "dtype": dtype, "share_of_peak": gflops / peak[dtype]}
        print(f"{side:<8} {gflops:6.1f} GFLOP/s (forward and backward, real tokens): "
              f"{gflops / peak[dtype]:.1%} of the {dtype} peak")
    print(load_line("after"))
    print(f"ratio x{ratio:.2f}; peak RSS {peak_rss_mb():.0f} MB"
          + (f"; peak GPU memory {gpu_peak:.0f} MB" if gpu_peak is not None else ""))
    save(args.name, {"n": len(train[0]), "n_validation": len(val[0]), "epochs": args.epochs,
                     "length_group_batches": args.length_group,
                     "batch_size": args.batch_size, "precision": backend.precision, "runs": runs,
                     "trainer": hf, "project": ours, "ratio": ratio, "peak_rss_mb": peak_rss_mb(),
                     "peak_gpu_mb": gpu_peak, "peak": peak, "shares": shares, "f1_difference": interval,
                     "load": [load_before, load_line("after")],
                     "note": "Trainer's defaults on both sides: lr 5e-5, no warmup, no weight decay, no class weights"})


if __name__ == "__main__":
    main()
