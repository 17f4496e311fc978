"""A transformer classifier exported to ONNX and run by ONNX Runtime (CPU), fp32 or int8.

Made by `trainer export --format onnx|onnx-int8` from a trained transformer folder; it predicts but
does not train. int8 is ONNX Runtime's dynamic quantisation of the encoder's matrix products
(weights int8 per output channel, activations quantised on the fly), except the feed-forward
down-projections, whose inputs (GELU outputs) have the widest range; quantising those too cost 0.4
points of label agreement with fp32 for 10% more speed (benchmarks/README.md).
"""

from __future__ import annotations

import ast
import logging
import re
import threading
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from trainer.errors import ConfigError, ModelLoadError
from trainer.infra import threads
from trainer.infra.crash import DISK_ERRORS
from trainer.labels import LABELS
from trainer.outputs import model_folder
from trainer.models.batching import encode, load_tokenizer, probabilities

ONNX_FILE = "model.onnx"
INSTALL_HINT = "install the ONNX extra: .venv/bin/pip install -e '.[onnx]'"


def _runtime() -> Any:
    try:
        import onnxruntime
    except ImportError:
        raise ModelLoadError(f"ONNX models need onnxruntime, which is not installed; {INSTALL_HINT}") from None
    return onnxruntime


class OnnxBackend:
    """An exported model behind the backend interface (prediction only)."""

    name: ClassVar[str] = "onnx"
    labels = LABELS

    def __init__(self, model_path: Path, tokenizer: Any, max_length: int, base_model: str | None, quantize: str | None,
                 context: bool = False):
        self.model_path = model_path
        self._sessions: dict[int, Any] = {}  # one per thread count the free cores asked for (infra/threads.py)
        self._sessions_lock = threading.Lock()  # batches may run on several threads at once
        self.session = self.session_for(threads.check())
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.base_model = base_model
        self.quantize = quantize
        self.context = context  # read each sentence with its neighbours, as the model it was exported from
        self.precision = f"onnx-{quantize or 'fp32'}"

    def session_for(self, count: int) -> Any:
        """A session computing with `count` threads (its thread pool is fixed when it is made), made once:
        a batch runs on the session for the cores free when it starts. Its threads wait for work asleep,
        not spinning: on cores shared with other work a spinning thread takes the time of the thread it
        waits for."""
        with self._sessions_lock:
            if count not in self._sessions:
                ort = _runtime()
                options = ort.SessionOptions()
                options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
                options.intra_op_num_threads = count
                options.add_session_config_entry("session.intra_op.allow_spinning", "0")
                self._sessions[count] = ort.InferenceSession(str(self.model_path), options,
                                                             providers=["CPUExecutionProvider"])
            return self._sessions[count]

    def fit(self, texts: Sequence[str], labels: Sequence[str]) -> OnnxBackend:
        raise ConfigError(
            "expected a trainable model, found an ONNX export (prediction only); "
            "train the transformer model it was exported from, then export again"
        )

    def predict_proba(self, texts: Sequence[str], batch_size: int | None = None) -> np.ndarray:
        """Probabilities in LABELS order, in input order; batches sorted by length to avoid padding."""
        return self.predict_proba_and_truncated(texts, batch_size)[0]

    def predict_proba_and_truncated(
        self, texts: Sequence[str], batch_size: int | None = None
    ) -> tuple[np.ndarray, list[bool]]:
        """Probabilities, and which texts were longer than the model reads, from one tokeniser pass."""
        ids, cut = encode(self.tokenizer, texts, self.max_length, self.context)

        def logits_of(input_ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
            session = self.session_for(threads.governor().threads or threads.check())
            return session.run(["logits"], {"input_ids": input_ids, "attention_mask": mask})[0]

        return probabilities(ids, batch_size or 64, self.tokenizer.pad_token_id or 0, logits_of), cut

    @classmethod
    def load(cls, directory: Path, meta: dict[str, Any], precision: str = "auto") -> OnnxBackend:
        """Load an export; `precision` is fixed by the export (fp32 or int8) and not a choice here."""
        if not (directory / ONNX_FILE).is_file():
            raise ModelLoadError(f"{directory}: expected an ONNX graph in {ONNX_FILE}, found none; export it again")
        tokenizer = load_tokenizer(directory)
        return cls(directory / ONNX_FILE, tokenizer, model_folder.max_length(meta, directory), meta.get("base_model"),
                   meta.get("quantize"), model_folder.reads_context(meta, directory))


def export_onnx(source: Any, directory: Path, int8: bool) -> None:
    """Write `source`'s (a TransformerBackend, in fp32) graph to directory/model.onnx; int8 quantises it.

    The graph comes from torch's dynamo exporter (`torch.export` + onnxscript), the one torch keeps up
    to date; the TorchScript exporter is deprecated since torch 2.9.
    """
    import torch

    model = source.model.to("cpu").eval()
    if next(model.parameters()).dtype != torch.float32:
        raise ModelLoadError("expected the source model in fp32 to export it, found it loaded in "
                             f"{next(model.parameters()).dtype}; load it with precision='fp32'")
    example = source.collate(source.encode(["The minister said the talks had failed.", "Shares rose."]))
    fp32_path = directory / ("fp32.onnx" if int8 else ONNX_FILE)
    with _quiet_exporter():
        try:
            _export(torch, model, example, fp32_path)
        except Exception as error:  # the exporter's failures come as many types; all mean the same here
            disk = disk_error_behind(error)
            if disk is not None:  # a full or read-only disk is the machine's fault, not torch's: one line
                raise disk from None
            message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise ModelLoadError(
                f"expected torch {torch.__version__} to export this model to ONNX, found it fails ({message}); "
                "export with --format int8 instead, or install the versions in requirements/lock.txt"
            ) from None
    if not int8:
        return
    try:
        import onnx
        from onnxruntime.quantization import QuantType, quantize_dynamic
    except ImportError:
        raise ModelLoadError(f"int8 ONNX export needs onnx and onnxruntime; {INSTALL_HINT}") from None
    graph = onnx.load(str(fp32_path), load_external_data=False).graph
    keep = _kept_in_fp32(graph)
    root = logging.getLogger()
    level, root.level = root.level, logging.ERROR  # the quantiser logs a line per tensor, and advice
    try:
        quantize_dynamic(
            str(fp32_path),
            str(directory / ONNX_FILE),
            weight_type=QuantType.QInt8,
            per_channel=True,
            op_types_to_quantize=["MatMul"],
            nodes_to_exclude=keep,
            extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
        )
    finally:
        root.setLevel(level)
    fp32_path.unlink()


@contextmanager
def _quiet_exporter() -> Iterator[None]:
    """Silence what the exporter prints on every export and that asks nothing of the user."""
    # torch.onnx: "torchvision is not installed. Skipping torchvision::nms" (4 lines); onnxscript and
    # onnx_ir: an INFO line for every optimiser pass and every deduplicated initializer.
    loggers = [logging.getLogger(name) for name in ("torch.onnx", "onnxscript", "onnx_ir")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            # torch.export's notes on renamed dynamic axes and pytree internals
            warnings.simplefilter("ignore")
            yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


def _export(torch: Any, model: Any, example: dict[str, Any], path: Path) -> None:
    batch, tokens = torch.export.Dim("batch"), torch.export.Dim("tokens")
    axes = {0: batch, 1: tokens}
    torch.onnx.export(
        model,
        (),
        str(path),
        kwargs={"input_ids": example["input_ids"].cpu(), "attention_mask": example["attention_mask"].cpu()},
        input_names=["input_ids", "attention_mask"],
        output_names=["logits"],
        dynamic_shapes={"input_ids": axes, "attention_mask": axes},
        opset_version=18,
        dynamo=True,
        optimize=True,  # onnxscript's graph optimiser: constant folding, fused patterns
        verbose=False,
    )


# The dynamo exporter names nodes by op ("node_MatMul_157"); the modules each came from are in this metadata.
_SCOPES_KEY = "pkg.torch.onnx.name_scopes"


def _modules_of(node: Any) -> list[str]:
    """The torch modules a graph node was traced from, outermost first, e.g. [..., 'bert.encoder.layer.0.output.dense', 'linear_5']."""
    for prop in node.metadata_props:
        if prop.key == _SCOPES_KEY:
            return [str(scope) for scope in ast.literal_eval(prop.value)]
    return []


def _is_ffn_down_projection(modules: list[str]) -> bool:
    """BERT-family naming: layer.N.output.dense is the feed-forward block's second matrix."""
    return any(re.search(r"\blayer\.\d+\.output\.dense$", m) for m in modules)


def disk_error_behind(error: BaseException | None) -> OSError | None:
    """The full-disk (or read-only, over-quota) OSError behind `error`, which the exporter may have wrapped."""
    seen = 0
    while error is not None and seen < 10:
        if isinstance(error, OSError) and error.errno in DISK_ERRORS:
            return error
        error, seen = error.__cause__ or error.__context__, seen + 1
    return None


def _kept_in_fp32(graph: Any) -> list[str]:
    """Nodes the int8 export leaves in fp32: the FFN down-projections, and the pooler and classifier head
    (Gemm: one row per sentence, so int8 would save nothing there and cost accuracy). ONNX Runtime's
    quantiser first rewrites each Gemm into a MatMul named `<gemm>_MatMul` plus an Add; it excludes by
    that name."""
    keep = []
    for node in graph.node:
        if node.op_type == "Gemm":
            keep += [node.name, f"{node.name}_MatMul"]
        elif node.op_type == "MatMul" and _is_ffn_down_projection(_modules_of(node)):
            keep.append(node.name)
    return keep
