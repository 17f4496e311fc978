"""Redraw the random halves of the news-outlets labels and check them against the committed files.

The random half of each corpus (`data.meta.sample: random` in allsides-, bbc- and syria-labels.json) is a
proportional stratified sample of the corpus's sentences, cleaned and split as `trainer select` reads them,
strata = outlet (AllSides, Syrian war) or section (BBC), drawn in two rounds: seed 20261204 (1,300 / 1,050 /
520 sentences), then seed 20261205 from the sentences the first round left (350 / 100 / 80). Sentences the
annotators judged not to be sentences were then left out of the files.

    .venv/bin/python data/real-news/draw_random_halves.py

prints, per corpus, how many drawn sentences there are and how many of the file's random-half tasks they
match (every one should).
"""

from __future__ import annotations

import csv
import json
import random
from collections import defaultdict
from pathlib import Path

from trainer.workflows.selection import read_candidates

HERE = Path(__file__).resolve().parent
CORPORA = HERE.parents[1].parent / "shared" / "corpora"
SEED = 20261204
# corpus folder -> (label file, stratum column, first round, second round)
PLAN = {
    "allsides-multioutlet-2012-2020": ("allsides-labels.json", "outlet", 1300, 350),
    "bbc-news-2004-05": ("bbc-labels.json", "category", 1050, 100),
    "fakes-syria-war-2011-2018": ("syria-labels.json", "outlet", 520, 80),
}


def allocation(sizes: dict[str, int], n: int) -> dict[str, int]:
    """n spread over strata in proportion to their sizes (largest remainders)."""
    total = sum(sizes.values())
    quotas = {h: n * size / total for h, size in sizes.items()}
    alloc = {h: int(q) for h, q in quotas.items()}
    for h in sorted(quotas, key=lambda h: quotas[h] - alloc[h], reverse=True)[: n - sum(alloc.values())]:
        alloc[h] += 1
    return alloc


def draw(rng: random.Random, strata: dict[str, list], n: int, taken: set) -> list:
    alloc = allocation({h: len(v) for h, v in strata.items()}, n)
    out = []
    for h in sorted(strata):
        left = [c for c in strata[h] if (c.article, c.start) not in taken]
        out += rng.sample(left, min(alloc[h], len(left)))
    return out


def main() -> None:
    candidates, strata_of = {}, {}
    for corpus, (_, column, _, _) in PLAN.items():
        meta = {r["filename"].rsplit(".", 1)[0]: r
                for r in csv.DictReader(open(CORPORA / corpus / "metadata.tsv", encoding="utf-8"), delimiter="\t")}
        strata = defaultdict(list)
        for c in read_candidates(CORPORA / corpus / "text"):
            strata[meta[c.article][column]].append(c)
        candidates[corpus], strata_of[corpus] = strata, meta
    rounds = {}
    rng = random.Random(SEED)
    for corpus, (_, _, first, _) in PLAN.items():  # one generator across the corpora, in this order
        rounds[corpus] = draw(rng, candidates[corpus], first, set())
    rng = random.Random(SEED + 1)
    for corpus, (_, _, _, second) in PLAN.items():
        taken = {(c.article, c.start) for c in rounds[corpus]}
        rounds[corpus] += draw(rng, candidates[corpus], second, taken)
    for corpus, (file, _, _, _) in PLAN.items():
        drawn = {(c.article, c.start, c.end) for c in rounds[corpus]}
        tasks = [t["data"]["meta"] for t in json.loads((HERE / file).read_text(encoding="utf-8"))
                 if t["data"]["meta"].get("sample") == "random"]
        matched = sum((m["article"], m["start"], m["end"]) in drawn for m in tasks)
        print(f"{corpus}: {len(drawn)} drawn; {matched} of the file's {len(tasks)} random-half tasks among them")


if __name__ == "__main__":
    main()
