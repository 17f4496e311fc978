"""Shared helpers for the benchmarks: the machine description, real sentences, result files."""

from __future__ import annotations

import json
import os
import platform
import resource
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
POLNEAR = ROOT.parent / "shared" / "corpora" / "polnear" / "text"


def machine() -> dict[str, Any]:
    """CPU model, cores, torch version and what the CPU offers for bf16."""
    import torch

    cpu = "unknown"
    if Path("/proc/cpuinfo").is_file():
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "avx512_bf16": bool(torch.cpu._is_avx512_bf16_supported()),
        "amx": bool(torch.cpu._is_amx_tile_supported()),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "python": platform.python_version(),
    }


def real_sentences(n: int) -> list[str]:
    """`n` real news sentences of 4+ words: PolNeAR when present, else the bundled corpus, cycled."""
    from trainer.data.sentences import sentence_spans

    folders = [POLNEAR] if POLNEAR.is_dir() else []
    folders.append(ROOT / "data" / "corpus" / "articles")
    sentences: list[str] = []
    for folder in folders:
        for path in sorted(folder.glob("*.txt")):
            spans, _ = sentence_spans(path.read_text(encoding="utf-8"))
            sentences += [s.text for s in spans if len(s.text.split()) >= 4]
            if len(sentences) >= n:
                return sentences[:n]
    return (sentences * (n // max(len(sentences), 1) + 1))[:n]


def load_line(when: str) -> str:
    """`uptime`'s load averages: other processes share these cores and slow whatever runs beside them."""
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    return f"load average {when}: {load[0]:.2f}, {load[1]:.2f}, {load[2]:.2f} (1, 5, 15 min) on {os.cpu_count()} cores"


def paired_interval(diffs: list[float], resamples: int = 10_000, seed: int = 0) -> dict[str, float]:
    """Mean of paired differences with a 95% t-interval and a paired bootstrap (percentile) interval."""
    import numpy as np
    from scipy import stats

    d = np.asarray(diffs, dtype=float)
    half = stats.t.ppf(0.975, len(d) - 1) * d.std(ddof=1) / np.sqrt(len(d))
    means = np.random.default_rng(seed).choice(d, size=(resamples, len(d))).mean(axis=1)
    return {"mean": float(d.mean()), "n": len(d), "t_low": float(d.mean() - half), "t_high": float(d.mean() + half),
            "bootstrap_low": float(np.quantile(means, 0.025)), "bootstrap_high": float(np.quantile(means, 0.975))}


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def save(name: str, result: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps({"machine": machine(), **result}, indent=2), encoding="utf-8")
    print(f"\nresult: {path}")
    return path


def need_model(path: Path) -> None:
    if not (path / "trainer_model.json").is_file():
        sys.exit(f"error: {path}: expected a trained model; run `make train` first")


# The news-outlets label files and the corpora their offsets point into (data/real-news/README.md).
NEWS_OUTLETS = {"allsides": "allsides-multioutlet-2012-2020", "bbc": "bbc-news-2004-05",
                "syria": "fakes-syria-war-2011-2018"}


def random_halves() -> dict[str, list[tuple[str, str, str]]]:
    """Corpus name -> (article, sentence, final label) of every random-half task of the news-outlets labels:
    the uniformly random, proportional stratified samples of AllSides, BBC and the Syrian-war corpus. The
    sentence is normalised as the dataset builder normalises it; the label is the adjudicator's, else the
    annotators' (who then agree). A corpus whose label file or articles are missing is left out."""
    from trainer.data.sentences import normalize
    from trainer.data.sources import read_text

    out: dict[str, list[tuple[str, str, str]]] = {}
    for name, folder in NEWS_OUTLETS.items():
        path = ROOT / "data" / "real-news" / f"{name}-labels.json"
        articles = ROOT.parent / "shared" / "corpora" / folder / "text"
        if not path.is_file() or not articles.is_dir():
            continue
        texts: dict[str, str] = {}
        rows = []
        for task in json.loads(path.read_text(encoding="utf-8")):
            meta = task["data"]["meta"]
            if meta.get("sample") != "random":
                continue
            labels = {a["completed_by"]: a["result"][0]["value"]["choices"][0] for a in task["annotations"]}
            if meta["article"] not in texts:
                texts[meta["article"]] = read_text(articles / f"{meta['article']}.txt")
            sentence = normalize(texts[meta["article"]][meta["start"]:meta["end"]])
            rows.append((meta["article"], sentence, labels.get("C") or labels.get("A") or labels.get("B")))
        out[name] = rows
    return out

