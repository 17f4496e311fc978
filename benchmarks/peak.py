"""The machine's own limit: matrix products at the model's shapes in fp32, bf16 and int8, on torch's threads.

    .venv/bin/python benchmarks/peak.py [--tokens 896]

Every benchmark calls `measure()` first and prints each rate beside its share of this peak: the
achieved GFLOP/s (useful work: real tokens, no padding) over what the same arithmetic reaches in a
bare matrix product here. The shapes are the encoder's linear layers (hidden x hidden, hidden x
3 hidden as the fused query-key-value, hidden x intermediate and back) with `tokens` rows, about one
batch of 32 sentences. int8 is oneDNN's u8 x s8 product with bf16 output (the static int8 path)
where the CPU has VNNI, else `torch._int_mm`. Each figure is the best of repeated timings: other
processes on the same cores only ever make a run slower, so the best is the closest to the limit; and
each is also timed on one thread by CPU time, times the threads, which contention barely touches.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

# MiniLM-L6's widths; `measure` takes others.
HIDDEN, INTERMEDIATE = 384, 1536


def _best_seconds(run: Callable[[], Any], clock: Callable[[], float] = time.perf_counter, repeats: int = 40,
                  min_time: float = 0.005) -> float:
    run()
    best = float("inf")
    for _ in range(repeats):
        start, calls = clock(), 0
        while True:
            run()
            calls += 1
            elapsed = clock() - start
            if elapsed >= min_time:
                break
        best = min(best, elapsed / calls)
    return best


def _per_second(run: Callable[[], Any], threads: int) -> float:
    """Calls per second on `threads` threads: the better of the wall clock on all of them, and `threads`
    times one thread's CPU time (which a process sharing the cores does not inflate)."""
    import torch

    wall = 1 / _best_seconds(run)
    torch.set_num_threads(1)
    try:
        one = 1 / _best_seconds(run, time.process_time, repeats=10, min_time=0.02)
    finally:
        torch.set_num_threads(threads)
    return max(wall, threads * one)


def shapes(hidden: int = HIDDEN, intermediate: int = INTERMEDIATE) -> list[tuple[int, int]]:
    """(in, out) of the encoder's linear layers."""
    return [(hidden, hidden), (hidden, 3 * hidden), (hidden, intermediate), (intermediate, hidden)]


def measure(tokens: int = 896, hidden: int = HIDDEN, intermediate: int = INTERMEDIATE) -> dict[str, Any]:
    """{"fp32"|"bf16"|"int8": best GFLOP/s over the model's shapes, "per_shape": {...}, "threads": n}."""
    import torch

    from trainer.models.int8 import vnni

    torch.manual_seed(0)
    threads = torch.get_num_threads()
    per_shape: dict[str, dict[str, float]] = {}
    for k, n in shapes(hidden, intermediate):
        flops = 2 * tokens * k * n
        x, w, b = torch.randn(tokens, k), torch.randn(n, k), torch.randn(n)
        rates = {
            "fp32": flops * _per_second(lambda: torch.nn.functional.linear(x, w, b), threads),
        }
        xb, wb, bb = x.bfloat16(), w.bfloat16(), b.bfloat16()
        rates["bf16"] = flops * _per_second(lambda: torch.nn.functional.linear(xb, wb, bb), threads)
        qw = torch.randint(-127, 128, (n, k), dtype=torch.int8)
        if vnni():
            qx = torch.randint(0, 256, (tokens, k), dtype=torch.uint8)
            packed = torch.ops.onednn.qlinear_prepack(qw, None)
            scale, zero = torch.rand(n), torch.zeros(n, dtype=torch.int64)
            rates["int8"] = flops * _per_second(lambda: torch.ops.onednn.qlinear_pointwise(
                qx, 0.05, 128, packed, scale, zero, b, 1.0, 0, torch.bfloat16, "none", [], ""), threads)
        else:
            sx, tw = torch.randint(-127, 128, (tokens, k), dtype=torch.int8), qw.t()
            rates["int8"] = flops * _per_second(lambda: torch._int_mm(sx, tw), threads)
        per_shape[f"{k}x{n}"] = {name: rate / 1e9 for name, rate in rates.items()}
    peak = {name: max(r[name] for r in per_shape.values()) for name in ("fp32", "bf16", "int8")}
    return {**peak, "per_shape": per_shape, "tokens": tokens, "threads": threads}


def limit(peak: dict[str, Any], flops_by_dtype: dict[str, float]) -> float:
    """GFLOP/s of work split by dtype (e.g. int8 products with some layers in bf16) if each part ran at its peak."""
    total = sum(flops_by_dtype.values())
    return total / sum(f / peak[dtype] for dtype, f in flops_by_dtype.items() if f)


def model_flops(config: Any, lengths: list[int], passes: int = 1) -> float:
    """FLOPs of the encoder over sentences of `lengths` real tokens: linear layers (2 per weight per token) and
    attention (4 x tokens^2 x hidden per layer); `passes` 3 for a training step (forward and backward)."""
    h, i, layers = config.hidden_size, config.intermediate_size, config.num_hidden_layers
    per_token = 2 * (4 * h * h + 2 * h * i) * layers
    return passes * sum(per_token * n + 4 * n * n * h * layers for n in lengths)


def describe(peak: dict[str, Any]) -> str:
    return (f"peak at the model's shapes ({peak['tokens']} rows, {peak['threads']} threads): "
            f"fp32 {peak['fp32']:.0f}, bf16 {peak['bf16']:.0f}, int8 {peak['int8']:.0f} GFLOP/s")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tokens", type=int, default=896)
    args = parser.parse_args()
    peak = measure(args.tokens)
    print(describe(peak))
    for shape, rates in peak["per_shape"].items():
        print(f"  {shape:>9}: " + ", ".join(f"{k} {v:.0f}" for k, v in rates.items()))


if __name__ == "__main__":
    main()
