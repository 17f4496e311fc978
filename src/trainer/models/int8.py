"""Static int8 for CPU prediction: SmoothQuant W8A8 through oneDNN's u8 x s8 matrix product.

Each linear layer of the encoder gets int8 weights (one scale per output channel) and uint8
activations with one scale and zero point, calibrated on real sentences. Before that, part of each
activation channel's range is moved into the weights (SmoothQuant: `x / s` and `W * s`, with
`s = max|x|^alpha / max|W|^(1 - alpha)` per input channel), so that a few wide channels do not
take the whole uint8 range. oneDNN multiplies u8 x s8 with VNNI and writes bf16 with the bias
added; everything else (embeddings, LayerNorm, attention, GELU, the pooler and classifier) runs in
bf16. Layers named in `keep` stay bf16 too.

The calibration (per-channel minimum and maximum of every layer's input) is small and saved next
to the fp32 weights (`int8.safetensors`); the weights are quantised when the model loads.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import torch

from trainer.errors import ModelLoadError
from trainer.outputs.provenance import PROJECT_ROOT, hardware

# SmoothQuant's migration strength: 0 leaves activations as they are, 1 moves all their range into the weights.
# 0.8 kept 99.80% of fp32's labels on 3,000 PolNeAR sentences, 0.5 99.60% (benchmarks/README.md).
ALPHA = 0.8
# `precision: auto` runs an int8 export in int8 only if its check kept at least this share of fp32's labels.
AGREEMENT_BOUND = 0.995
# The calibration and its settings, beside the fp32 weights of an int8 export.
INT8_FILE = "int8.safetensors"
# Real sentences to calibrate on when none are given: the bundled corpus, which the benchmarks never measure on.
CORPUS = PROJECT_ROOT / "data" / "corpus" / "articles"
CALIBRATION_SENTENCES = 512
# Encoder linear layers by name. BERT-family naming: `layer.N.output.dense` is the feed-forward down-projection.
ENCODER_LINEAR = ".layer."


def vnni() -> bool:
    """True where oneDNN's u8 x s8 products run natively (AVX512-VNNI, AVX-VNNI or AMX)."""
    return bool(torch.cpu._is_vnni_supported() or torch.cpu._is_amx_tile_supported())


def encoder_linears(model: torch.nn.Module) -> dict[str, torch.nn.Linear]:
    """The encoder's linear layers, by module name (the pooler and the classifier head are not among them)."""
    return {name: m for name, m in model.named_modules() if isinstance(m, torch.nn.Linear) and ENCODER_LINEAR in name}


@torch.inference_mode()
def calibrate(model: torch.nn.Module, run: Callable[[], Any]) -> dict[str, torch.Tensor]:
    """Per-channel minimum and maximum of every encoder linear layer's input while `run()` predicts.

    Returns {"<layer>.min": tensor, "<layer>.max": tensor}, fp32, one value per input channel.
    """
    stats: dict[str, torch.Tensor] = {}

    def observe(name: str) -> Callable[..., None]:
        def hook(module: Any, inputs: tuple[torch.Tensor, ...], output: Any) -> None:
            x = inputs[0].detach().float().reshape(-1, inputs[0].shape[-1])
            low, high = x.amin(0), x.amax(0)
            if f"{name}.min" in stats:
                low, high = torch.minimum(low, stats[f"{name}.min"]), torch.maximum(high, stats[f"{name}.max"])
            stats[f"{name}.min"], stats[f"{name}.max"] = low, high
        return hook

    hooks = [m.register_forward_hook(observe(name)) for name, m in encoder_linears(model).items()]
    try:
        run()
    finally:
        for hook in hooks:
            hook.remove()
    return stats


class StaticInt8Linear(torch.nn.Module):
    """One or more linear layers on the same input as one u8 x s8 product (oneDNN), bf16 in and out.

    `post_op` "gelu" applies the exact GELU inside the product (the feed-forward up-projection).
    """

    def __init__(self, linears: list[torch.nn.Linear], low: torch.Tensor, high: torch.Tensor, alpha: float = ALPHA,
                 post_op: str = "none"):
        super().__init__()
        weight = torch.cat([m.weight.detach().float() for m in linears])
        absmax = torch.maximum(low.abs(), high.abs()).clamp(min=1e-5)
        smooth = absmax**alpha / weight.abs().amax(0).clamp(min=1e-5) ** (1 - alpha)
        weight = weight * smooth
        w_scale = weight.abs().amax(1).clamp(min=1e-8) / 127
        qweight = torch.round(weight / w_scale[:, None]).clamp(-127, 127).to(torch.int8)
        # The smoothed activation's range, with 0 inside it (zero padding must stay exact).
        lo, hi = min(float((low / smooth).min()), 0.0), max(float((high / smooth).max()), 0.0)
        x_scale = max(hi - lo, 1e-8) / 255
        self.x_scale, self.x_zero_point = x_scale, int(round(-lo / x_scale))
        self.out_features, self.post_op = weight.shape[0], post_op
        # round(x / smooth / x_scale) + zero point, as one multiply-add (+0.5: the uint8 cast truncates)
        self.register_buffer("multiplier", 1 / (smooth * x_scale))
        self.register_buffer("offset", torch.tensor(self.x_zero_point + 0.5))
        self.register_buffer("w_scale", w_scale)
        self.register_buffer("w_zero_point", torch.zeros(len(w_scale), dtype=torch.int64))
        biases = [m.bias.detach().float() if m.bias is not None else torch.zeros(m.out_features) for m in linears]
        self.register_buffer("bias", torch.cat(biases))
        self.register_buffer("packed", torch.ops.onednn.qlinear_prepack(qweight, None))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape
        q = torch.addcmul(self.offset, x.reshape(-1, shape[-1]), self.multiplier).clamp_(0, 255).to(torch.uint8)
        y = torch.ops.onednn.qlinear_pointwise(
            q, self.x_scale, self.x_zero_point, self.packed, self.w_scale, self.w_zero_point, self.bias,
            1.0, 0, torch.bfloat16, self.post_op, [], "none",
        )
        return y.reshape(*shape[:-1], self.out_features)


class _SharedProduct(torch.nn.Module):
    """Query, key and value as one product: the first of the three calls on an input computes all three.
    What it holds between the three calls is per thread: prediction may run batches on several threads
    at once (infra/threads.run_batches)."""

    def __init__(self, fused: StaticInt8Linear, parts: int):
        super().__init__()
        self.fused, self.parts = fused, parts
        # thread -> (input, its outputs, how many taken); an entry lives only between the three calls
        self._held: dict[int, tuple[torch.Tensor, tuple[torch.Tensor, ...], int]] = {}

    def take(self, x: torch.Tensor, index: int) -> torch.Tensor:
        thread = threading.get_ident()
        held, outputs, taken = self._held.get(thread, (None, (), 0))
        if held is not x:
            outputs, taken = self.fused(x).chunk(self.parts, dim=-1), 0
        if taken + 1 == self.parts:  # all three taken: hold no activations between batches
            self._held.pop(thread, None)
        else:
            self._held[thread] = (x, outputs, taken + 1)
        return outputs[index]


class _Part(torch.nn.Module):
    def __init__(self, shared: _SharedProduct, index: int):
        super().__init__()
        self.shared, self.index = [shared], index  # a list: registered once, on the attention module

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shared[0].take(x, self.index)


def _range(stats: dict[str, torch.Tensor], names: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    low = torch.stack([stats[f"{n}.min"] for n in names]).amin(0)
    return low, torch.stack([stats[f"{n}.max"] for n in names]).amax(0)


def quantize_static(model: torch.nn.Module, stats: dict[str, torch.Tensor], keep: Iterable[str] = (),
                    alpha: float = ALPHA) -> torch.nn.Module:
    """`model` (fp32 weights) with its encoder linears as u8 x s8 products, except those named in `keep`,
    and everything else in bf16. Query, key and value become one product; the feed-forward
    up-projection carries its GELU."""
    keep = set(keep)
    chosen = {name: m for name, m in encoder_linears(model).items() if name not in keep and f"{name}.min" in stats}
    replacements: dict[str, torch.nn.Module] = {}
    for name, module in model.named_modules():
        qkv = [f"{name}.{part}" for part in ("query", "key", "value")]
        if all(n in chosen for n in qkv):
            shared = _SharedProduct(StaticInt8Linear([chosen[n] for n in qkv], *_range(stats, qkv), alpha), 3)
            replacements[f"{name}.qkv"] = shared
            replacements.update({n: _Part(shared, i) for i, n in enumerate(qkv)})
        gelu = getattr(module, "intermediate_act_fn", None)
        dense = f"{name}.dense"
        if dense in chosen and _is_exact_gelu(gelu):
            replacements[dense] = StaticInt8Linear([chosen[dense]], *_range(stats, [dense]), alpha, "gelu")
            replacements[f"{name}.intermediate_act_fn"] = torch.nn.Identity()
    for name, m in chosen.items():
        replacements.setdefault(name, StaticInt8Linear([m], *_range(stats, [name]), alpha))
    model = model.to(torch.bfloat16)
    for name, module in replacements.items():
        parent, _, child = name.rpartition(".")
        setattr(model.get_submodule(parent), child, module)
    return model


def _is_exact_gelu(fn: Any) -> bool:
    return isinstance(fn, torch.nn.Module) and type(fn).__name__ == "GELUActivation" and \
        getattr(fn, "act", None) is torch.nn.functional.gelu


def ffn_down_projections(model: torch.nn.Module) -> list[str]:
    """The feed-forward down-projections (BERT-family `layer.N.output.dense`): their inputs, GELU outputs,
    have the widest range; in int8 they cost the most labels."""
    return [name for name in encoder_linears(model) if name.endswith(".output.dense") and ".attention." not in name]


def corpus_sentences(folder: Path = CORPUS) -> list[str]:
    """Sentences of 4+ words from the bundled corpus's articles, in file order."""
    from trainer.data.sentences import sentence_spans

    paths = sorted(folder.glob("*.txt")) if folder.is_dir() else []
    if not paths:
        raise ModelLoadError(f"{folder}: expected the bundled corpus's articles to calibrate int8 on, found none; "
                             "run from the repository, or pass calibration sentences")
    spans = (sentence_spans(path.read_text(encoding="utf-8"))[0] for path in paths)
    return [s.text for sentences in spans for s in sentences if len(s.text.split()) >= 4]


def save_calibration(path: Path, stats: dict[str, torch.Tensor]) -> None:
    from safetensors.torch import save_file

    save_file({k: v.contiguous() for k, v in stats.items()}, str(path))


def load_calibration(path: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(path))


def choose(precision: str, check: dict[str, Any]) -> tuple[bool, str]:
    """Whether an int8 export runs in int8 here, and why: with `auto`, where this CPU has VNNI, the
    export's check kept at least AGREEMENT_BOUND of fp32's labels, and int8 was faster than bf16 when
    measured on this CPU model (a CPU the export was not measured on gets int8 on the VNNI rule)."""
    if precision != "auto":
        return False, f"{precision}, as asked (the export keeps fp32 weights)"
    if not vnni():
        return False, "not int8: this CPU has no VNNI (or AMX) for int8 products"
    agreement = float(check.get("agreement", 0.0))
    if agreement < AGREEMENT_BOUND:
        return False, f"not int8: its check kept {agreement:.2%} of fp32's labels, below {AGREEMENT_BOUND:.1%}"
    speedup = float(check.get("speedup_vs_bf16", 0.0))
    if check.get("cpu") == hardware()["cpu"] and speedup <= 1.0:
        return False, f"not int8: {speedup:.2f}x bf16 when measured on this CPU"
    return True, (f"int8 (static SmoothQuant, {len(check.get('keep', []))} layers in bf16): "
                  f"{agreement:.2%} of fp32's labels on {check.get('checked', 0)} sentences, "
                  f"{speedup:.2f}x bf16 on {check.get('cpu')}")
