"""Training throughput: transformers.Trainer (default TrainingArguments) vs the project's loop.

    .venv/bin/python benchmarks/bench_train.py [--epochs 1] [--batch-size 32]

Same model (all-MiniLM-L6-v2), same bundled train split, batch size and epochs. Prints examples/s
of each side, the ratio, validation macro-F1 of each, peak memory and the machine.
"""

from __future__ import annotations

import argparse
import tempfile
import time

from common import ROOT, machine, peak_rss_mb, save


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()

    import torch
    from datasets import Dataset
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        DataCollatorWithPadding,
        Trainer,
        TrainingArguments,
    )

    from trainer.config import TrainingConfig, TransformerModel, load_data_config
    from trainer.data.build import build_dataset
    from trainer.labels import ID2LABEL, LABEL2ID, LABELS
    from trainer.metrics import macro_f1
    from trainer.models.transformer import TransformerBackend, default_pretrained

    built = build_dataset(load_data_config(ROOT / "configs" / "data" / "bundled.yaml"), progress=False)
    names = built.dataset["train"].features["label"].names
    train_texts, train_labels = list(built.dataset["train"]["text"]), [names[i] for i in built.dataset["train"]["label"]]
    val_texts, val_labels = list(built.dataset["validation"]["text"]), [names[i] for i in built.dataset["validation"]["label"]]
    print(machine())
    print(f"{len(train_texts)} training sentences, {args.epochs} epoch(s), batch size {args.batch_size}")

    # ---- transformers.Trainer with default TrainingArguments (only what the comparison needs set)
    torch.manual_seed(13)
    tokenizer = AutoTokenizer.from_pretrained(default_pretrained())
    model = AutoModelForSequenceClassification.from_pretrained(
        default_pretrained(), num_labels=3, id2label=dict(ID2LABEL), label2id=dict(LABEL2ID)
    )
    train_ds = Dataset.from_dict({"text": train_texts, "label": [LABEL2ID[y] for y in train_labels]}).map(
        lambda b: tokenizer(b["text"], truncation=True, max_length=128), batched=True, remove_columns=["text"]
    )
    with tempfile.TemporaryDirectory() as out:
        hf_args = TrainingArguments(
            output_dir=out, per_device_train_batch_size=args.batch_size, num_train_epochs=args.epochs,
            report_to=[], save_strategy="no", logging_strategy="no", disable_tqdm=True,
        )
        trainer = Trainer(model=model, args=hf_args, train_dataset=train_ds,
                          data_collator=DataCollatorWithPadding(tokenizer))
        start = time.perf_counter()
        trainer.train()
        hf_seconds = time.perf_counter() - start
    model.eval()
    with torch.inference_mode():
        logits = [model(**tokenizer(val_texts[i:i + 64], padding=True, truncation=True, max_length=128,
                                   return_tensors="pt")).logits for i in range(0, len(val_texts), 64)]
    hf_f1 = macro_f1(val_labels, [LABELS[i] for i in torch.cat(logits).argmax(-1).tolist()])
    hf_rate = len(train_texts) * args.epochs / hf_seconds
    print(f"transformers.Trainer     {hf_rate:7.1f} examples/s  validation macro-F1 {hf_f1:.3f}")

    # ---- the project's loop: pre-tokenised, length-grouped batches, bf16 where native
    training = TrainingConfig(epochs=args.epochs, batch_size=args.batch_size, early_stopping_patience=99,
                              class_weighting=False, warmup_ratio=0.0, learning_rate=5e-5, seed=13)
    backend = TransformerBackend(TransformerModel(), training)
    start = time.perf_counter()
    backend.fit(train_texts, train_labels)
    ours_seconds = time.perf_counter() - start
    ours_f1 = macro_f1(val_labels, backend.predict_labels(val_texts))
    ours_rate = len(train_texts) * args.epochs / ours_seconds
    print(f"project loop ({backend.precision})   {ours_rate:7.1f} examples/s  validation macro-F1 {ours_f1:.3f}")
    print(f"\nratio x{ours_rate / hf_rate:.2f}; peak RSS {peak_rss_mb():.0f} MB")
    save("train", {"n": len(train_texts), "epochs": args.epochs, "batch_size": args.batch_size,
                   "precision": backend.precision,
                   "trainer": {"examples_per_s": hf_rate, "val_macro_f1": hf_f1},
                   "project": {"examples_per_s": ours_rate, "val_macro_f1": ours_f1},
                   "ratio": ours_rate / hf_rate, "peak_rss_mb": peak_rss_mb(),
                   "note": "same learning rate 5e-5 on both sides, no class weights, no warmup: Trainer's defaults"})


if __name__ == "__main__":
    main()
