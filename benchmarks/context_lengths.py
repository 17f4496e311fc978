"""Tokens of a sentence read with its neighbours (model.context), per shared corpus: what max_length to give it.

For the first N articles of each corpus (split as every reader splits them), the MiniLM tokens of each sentence
alone (with [CLS] and [SEP]) and of the pair the context model reads (the sentence, the one before and the one
after, with the pair's four special tokens), at the median, 95th and 99th percentiles, and the share of pairs
longer than 128, 192 and 256 tokens (whose context would be cut there; the sentence itself never is).

    python benchmarks/context_lengths.py --articles 150
"""

from __future__ import annotations

import argparse

import numpy as np
from common import ROOT

from trainer.data.sentences import sentence_spans
from trainer.models import encoders

CORPORA = ("polnear", "bbc-news-2004-05", "allsides-multioutlet-2012-2020", "fakes-syria-war-2011-2018")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--articles", type=int, default=150, help="articles per corpus (the first, by name)")
    args = parser.parse_args()
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(encoders.resolve(None))
    pair_specials = tokenizer.num_special_tokens_to_add(pair=True) + 1  # and the [SEP] between the neighbours
    for corpus in CORPORA:
        files = sorted((ROOT.parent / "shared" / "corpora" / corpus / "text").glob("*.txt"))[: args.articles]
        single, triple = [], []
        for path in files:
            sentences = [s.text for s in sentence_spans(path.read_text(encoding="utf-8"))[0]]
            if not sentences:
                continue
            n = [len(ids) for ids in tokenizer(sentences, add_special_tokens=False)["input_ids"]]
            for i, length in enumerate(n):
                single.append(length + tokenizer.num_special_tokens_to_add(pair=False))
                triple.append(length + (n[i - 1] if i else 0) + (n[i + 1] if i + 1 < len(n) else 0) + pair_specials)
        if not single:
            continue
        s, t = np.array(single), np.array(triple)
        over = ", ".join(f">{k}: {(t > k).mean():.2%}" for k in (128, 192, 256))
        print(f"{corpus:32} {len(s):>6} sentences  alone p50/p95/p99 {np.percentile(s, [50, 95, 99]).round().tolist()}"
              f"  with neighbours p50/p95/p99 {np.percentile(t, [50, 95, 99]).round().tolist()}  {over}")


if __name__ == "__main__":
    main()
