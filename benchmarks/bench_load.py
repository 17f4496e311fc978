"""Shared cores: training and prediction rates on quiet and on loaded cores, old thread policy vs new.

    .venv/bin/python benchmarks/bench_load.py [--model models/minilm-bundled] [--busy 3] [--rounds 3]

Starts its own background load: `--busy` processes that each spin one core, bounded by `--limit-s`
and stopped by this script. In each phase (quiet, then loaded) it times, interleaved in the same
process, round by round:

- prediction (`Classifier.predict` on the trained folder, `--n` sentences a round) and, with
  onnxruntime installed, the ONNX export (`--onnx`);
- training (the project's loop on the real all-MiniLM-L6-v2, `--steps` optimiser steps of
  `--batch-size` a round);

each under the old policy (torch's default: one thread per core, fixed), with `--policies`
also `one` (one thread, fixed: what the new policy did under load before it had workers), and the new one
(infra/threads.py: the free cores, re-checked between batches and every few steps; where they leave
one thread, prediction runs its batches on two single-thread workers at once). `--tasks`
picks some of them (a short A/B run of prediction alone: `--tasks predict --rounds 2 --n 128`). It prints the
rates side by side, the share of the quiet rate each keeps under load, the load averages at the
time, and the CPU (lscpu model and flags). The machine may be shared with other work already, so
"quiet" means "without this script's load": the load average says how quiet it was.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from common import ROOT, load_line, need_model, real_sentences, save


def spin(deadline: float) -> None:
    """One busy process: a pure-Python loop until `deadline` (time.time())."""
    while time.time() < deadline:
        pass


class BusyLoad:
    """`count` spinning processes for at most `limit_s` seconds; stopped on leaving the `with` block."""

    def __init__(self, count: int, limit_s: float):
        self.count, self.limit_s = count, limit_s
        self.processes: list[multiprocessing.Process] = []

    def __enter__(self) -> BusyLoad:
        context = multiprocessing.get_context("spawn")
        deadline = time.time() + self.limit_s
        self.processes = [context.Process(target=spin, args=(deadline,), daemon=True) for _ in range(self.count)]
        for process in self.processes:
            process.start()
        time.sleep(2.0)  # let them start spinning before timing anything
        return self

    def __exit__(self, *exc: object) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            process.join(timeout=10)


def cpu_description() -> dict[str, str]:
    """lscpu's model name and the flags that matter for these kernels."""
    try:
        text = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return {"model": "unknown", "flags": ""}
    fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
    flags = fields.get("Flags", "").split()
    wanted = [f for f in flags if f.startswith(("avx", "amx", "fma", "sse4_2")) or f in ("f16c", "vnni")]
    return {"model": fields.get("Model name", "unknown").strip(), "cores": fields.get("CPU(s)", "?").strip(),
            "flags": " ".join(wanted)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", type=Path, default=ROOT / "models" / "minilm-bundled")
    parser.add_argument("--busy", type=int, default=3, help="busy processes in the loaded phase")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--n", type=int, default=256, help="sentences predicted per round and policy")
    parser.add_argument("--steps", type=int, default=4, help="training steps per round and policy")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--onnx", action="store_true", help="also time the ONNX export (needs onnxruntime)")
    parser.add_argument("--limit-s", type=float, default=900.0, help="the background load stops after this")
    parser.add_argument("--tasks", default="predict,onnx,train",
                        help="comma-separated: predict, onnx (with --onnx), train")
    parser.add_argument("--policies", default="old,new",
                        help="comma-separated: old (one thread per core, fixed), one (one thread, fixed), new")
    parser.add_argument("--name", default="load")
    args = parser.parse_args()
    need_model(args.model)

    from trainer.infra import threads
    from trainer.infra.threads import ThreadGovernor, affinity_cores

    cpu = cpu_description()
    print(f"CPU: {cpu['model']}, {cpu['cores']} CPUs; flags: {cpu['flags']}")
    texts = real_sentences(args.n * 4)
    tasks = build_tasks(args, texts)
    known = {"old": lambda: ThreadGovernor(fixed=affinity_cores()), "one": lambda: ThreadGovernor(fixed=1),
             "new": ThreadGovernor}
    policies = {name: known[name]() for name in args.policies.split(",")}
    rates: dict[str, dict[str, list[float]]] = {}
    loads = {}
    for phase, busy in (("quiet", 0), ("loaded", args.busy)):
        with BusyLoad(busy, args.limit_s):
            loads[phase] = [load_line(f"{phase}, start")]
            for round_ in range(args.rounds):
                for task, run in tasks.items():
                    for policy, governor in policies.items():
                        threads.use(governor)
                        rate = run(round_)
                        rates.setdefault(f"{task} {policy}", {}).setdefault(phase, []).append(rate)
                        print(f"  {phase} round {round_ + 1} {task:<10} {policy}: {rate:7.1f}/s "
                              f"({governor.threads} threads x {governor.workers} workers)", flush=True)
            loads[phase].append(load_line(f"{phase}, end"))
    threads.use(None)
    report(args, cpu, rates, loads)


def build_tasks(args: argparse.Namespace, texts: list[str]) -> dict[str, Callable[[int], float]]:
    """name -> run(round) -> items/s: prediction (torch, and ONNX with --onnx) and training."""
    from trainer import load_classifier
    from trainer.models.loop import StepDone

    classifier = load_classifier(args.model)
    slices = [texts[(r % 4) * args.n:(r % 4 + 1) * args.n] for r in range(4)]

    def timed(fn: Callable[[], object], items: int) -> float:
        start = time.perf_counter()
        fn()
        return items / (time.perf_counter() - start)

    wanted = set(args.tasks.split(","))
    tasks: dict[str, Callable[[int], float]] = {}
    if "predict" in wanted:
        tasks["predict"] = lambda r: timed(lambda: classifier.predict(slices[r % 4], batch_size=32), args.n)
    if args.onnx and "onnx" in wanted:
        onnx = onnx_classifier(args.model)
        if onnx is not None:
            tasks["onnx"] = lambda r: timed(lambda: onnx.predict(slices[r % 4], batch_size=32), args.n)
    classifier.predict(slices[0][:32])  # warm-up
    if "train" not in wanted:
        return tasks
    loop = training_loop(texts, args.batch_size)
    events = iter(loop)

    def train(_: int) -> float:
        def steps() -> None:
            taken = 0
            while taken < args.steps:
                taken += isinstance(next(events), StepDone)

        return timed(steps, args.steps * args.batch_size)

    tasks["train"] = train
    train(0)
    return tasks


def training_loop(texts: list[str], batch_size: int):
    """The project's loop on all-MiniLM-L6-v2 with a new head, on `texts` with rule labels, as an endless
    stream of events (epochs enough for any benchmark)."""
    from trainer.config import TrainingConfig, TransformerModel
    from trainer.data.rules import RuleLabeler, rules_path
    from trainer.models.transformer import TransformerBackend

    labeler = RuleLabeler.from_yaml(rules_path(None))
    labels = [labeler.label(t).label for t in texts]
    training = TrainingConfig(batch_size=batch_size, epochs=1000, device="cpu", early_stopping_patience=1000)
    return TransformerBackend.from_config(TransformerModel(), training).training_loop(texts, labels)


def onnx_classifier(model: Path):
    import importlib.util

    from trainer import load_classifier
    from trainer.models.export import export_model

    if importlib.util.find_spec("onnxruntime") is None:
        print("onnxruntime not installed: no ONNX rows (pip install -e '.[onnx]')")
        return None
    folder = Path(tempfile.mkdtemp()) / "onnx"
    export_model(model, folder, "onnx")
    return load_classifier(folder)


def report(args: argparse.Namespace, cpu: dict[str, str], rates: dict[str, dict[str, list[float]]],
           loads: dict[str, list[str]]) -> None:
    import statistics

    print(f"\n{'task, policy':<16} {'quiet/s':>9} {'loaded/s':>9} {'kept':>6}   ({args.busy} busy processes, "
          f"{os.cpu_count()} cores; median of {args.rounds} rounds)")
    rows = {}
    for name, phases in rates.items():
        quiet, loaded = statistics.median(phases["quiet"]), statistics.median(phases["loaded"])
        rows[name] = {"quiet": quiet, "loaded": loaded, "kept": loaded / quiet, "samples": phases}
        print(f"{name:<16} {quiet:9.1f} {loaded:9.1f} {loaded / quiet:6.0%}")
    for lines in loads.values():
        print("\n".join(lines))
    save(args.name, {"cpu": cpu, "busy": args.busy, "rounds": args.rounds, "n": args.n, "steps": args.steps,
                     "batch_size": args.batch_size, "loads": loads, "rows": rows})


if __name__ == "__main__":
    main()
