"""Correctness of the fast paths: sorted batches equal the plain path, precision settings, int8 export."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from trainer import load_classifier
from trainer.cli import main
from trainer.config import TrainingConfig, TransformerModel
from trainer.models.onnx import _is_ffn_down_projection, _modules_of
from trainer.models.transformer import TransformerBackend, fast_bf16, resolve_precision
from trainer.models.loop import EpochDone

TEXTS = [
    "The mayor said the bridge would reopen in May after repairs that cost $2 million.",
    "Shares rose.",
    "Rebels reportedly seized the airport on Sunday, though the claim could not be verified.",
    "It is unclear how many people were inside the building when it collapsed late on Tuesday night.",
    "Officials said two people died.",
    "\"We will rebuild,\" she said.",
] * 5


def test_length_sorted_batches_equal_one_sentence_at_a_time(trained_tiny):
    """Padding and sorting change nothing: same probabilities as a plain, unbatched pass."""
    backend = load_classifier(trained_tiny[1].model_dir, precision="fp32").backend
    fast = backend.predict_proba(TEXTS, batch_size=16)
    plain = np.vstack([backend.predict_proba([t], batch_size=1) for t in TEXTS])
    np.testing.assert_allclose(fast, plain, atol=1e-5)
    assert (fast.argmax(1) == plain.argmax(1)).all()


def test_no_texts_give_no_rows(trained_tiny):
    backend = load_classifier(trained_tiny[1].model_dir).backend
    proba, truncated = backend.predict_proba_and_truncated([])
    assert proba.shape == (0, 3) and truncated == []


def test_same_probabilities_as_the_transformers_pipeline(trained_tiny):
    from transformers import pipeline

    model_dir = trained_tiny[1].model_dir
    ours = load_classifier(model_dir, precision="fp32").predict(TEXTS)
    plain = pipeline("text-classification", model=str(model_dir), device=-1, top_k=None)
    theirs = plain(TEXTS, batch_size=8, truncation=True, max_length=64)
    for mine, scores in zip(ours, theirs):
        reference = {s["label"]: s["score"] for s in scores}
        assert mine.probabilities == pytest.approx(reference, abs=1e-4)


@pytest.mark.parametrize(("setting", "expected"), [("fp32", "fp32"), ("bf16", "bf16")])
def test_precision_forced_when_asked(tiny_model_dir, setting, expected):
    backend = TransformerBackend(TransformerModel(pretrained=str(tiny_model_dir)), TrainingConfig(precision=setting))
    assert backend.precision == expected
    assert backend._autocast().fast_dtype == torch.bfloat16 and backend._autocast()._enabled is (expected == "bf16")


def test_auto_precision_follows_the_hardware(tiny_model_dir):
    backend = TransformerBackend(TransformerModel(pretrained=str(tiny_model_dir)), TrainingConfig(precision="auto"))
    assert backend.precision == ("bf16" if fast_bf16(backend.device) else "fp32")


def test_int8_export_loads_and_predicts(trained_tiny, tmp_path, capsys):
    output = tmp_path / "int8"
    assert main(["export", "--model", str(trained_tiny[1].model_dir), "--output", str(output), "--format", "int8"]) == 0
    assert json.loads((output / "trainer_model.json").read_text())["quantize"] == "int8"
    clf = load_classifier(output)
    assert clf.backend.precision == "int8"
    predictions = clf.predict(TEXTS)
    assert all(sum(p.probabilities.values()) == pytest.approx(1, abs=1e-5) for p in predictions)
    assert main(["export", "--model", str(trained_tiny[1].model_dir), "--output", str(output)]) == 2  # exists


@pytest.mark.parametrize(("bf16_supported", "expected"), [(True, "bf16"), (False, "fp16")])
def test_auto_precision_on_a_gpu(monkeypatch, bf16_supported, expected):
    """GPUs with bf16 get bf16; older GPUs (V100, T4) fp16 with loss scaling."""
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: bf16_supported)
    assert resolve_precision("auto", torch.device("cuda")) == expected
    assert resolve_precision("fp32", torch.device("cuda")) == "fp32"


def test_fp16_training_scales_the_loss_and_learns(tiny_model_dir):
    """The fp16 path (GradScaler, fp16 autocast) trains; run on the CPU here, as on a GPU without bf16."""
    texts = ["The minister said the talks had failed.", "Shares rose.", "Rebels reportedly seized the town."] * 8
    labels = ["attributed", "verified", "unverified"] * 8
    training = TrainingConfig(precision="fp16", device="cpu", epochs=3, batch_size=8, learning_rate=1e-3,
                              warmup_ratio=0.0, checkpoint_every_steps=1000)
    backend = TransformerBackend(TransformerModel(pretrained=str(tiny_model_dir)), training)
    assert backend.precision == "fp16" and backend._autocast().fast_dtype == torch.float16
    before = {k: v.clone() for k, v in backend.model.state_dict().items()}
    losses = []
    loop = backend.training_loop(texts, labels)  # the loop's epoch events carry the training loss
    losses += [event.metrics["train_loss"] for event in loop if isinstance(event, EpochDone)]
    loop.finish()
    changed = [k for k, v in backend.model.state_dict().items() if not torch.equal(v, before[k])]
    assert len(changed) > 10 and all(np.isfinite(losses)) and losses[-1] < losses[0]
    assert np.isfinite(backend.predict_proba(texts)).all()


def test_loaded_model_precision_is_a_setting(trained_tiny):
    """bf16 casts the weights once; fp32 forces full precision; both give the same labels here."""
    model_dir = trained_tiny[1].model_dir
    fp32 = load_classifier(model_dir, precision="fp32").backend
    bf16 = load_classifier(model_dir, precision="bf16").backend
    assert (fp32.precision, fp32.model.dtype) == ("fp32", torch.float32)
    assert (bf16.precision, bf16.model.dtype) == ("bf16", torch.bfloat16)
    exact, rounded = fp32.predict_proba(TEXTS), bf16.predict_proba(TEXTS)
    assert rounded.dtype == np.float32 and np.allclose(rounded.sum(1), 1, atol=1e-5)
    np.testing.assert_allclose(rounded, exact, atol=0.03)  # bf16 keeps 8 bits of mantissa
    auto = load_classifier(model_dir).backend
    assert auto.precision == ("bf16" if fast_bf16(auto.device) else "fp32")


def test_unknown_precision_is_a_config_error(trained_tiny):
    from trainer.errors import ConfigError

    with pytest.raises(ConfigError, match="precision: expected one of auto, bf16, fp16, fp32, found 'fp8'"):
        load_classifier(trained_tiny[1].model_dir, precision="fp8")


def test_onnx_export_gives_the_source_probabilities_in_input_order(trained_tiny, tmp_path):
    pytest.importorskip("onnxruntime")
    model_dir = trained_tiny[1].model_dir
    output = tmp_path / "onnx"
    assert main(["export", "--model", str(model_dir), "--output", str(output)]) == 0  # onnx is the default
    assert json.loads((output / "trainer_model.json").read_text())["backend"] == "onnx"
    texts = [*TEXTS, "word " * 400]  # the last is longer than the model reads
    exported = load_classifier(output).predict(texts, batch_size=4)
    source = load_classifier(model_dir, precision="fp32").predict(texts, batch_size=4)
    assert [p.text for p in exported] == texts
    assert [p.truncated for p in exported] == [False] * len(TEXTS) + [True]
    for mine, theirs in zip(exported, source):
        assert mine.label == theirs.label
        assert mine.probabilities == pytest.approx(theirs.probabilities, abs=1e-4)


def test_onnx_int8_export_quantises_all_but_the_feed_forward_outputs(trained_tiny, tmp_path):
    onnx = pytest.importorskip("onnx")
    model_dir = trained_tiny[1].model_dir
    output = tmp_path / "onnx-int8"
    assert main(["export", "--model", str(model_dir), "--output", str(output), "--format", "onnx-int8"]) == 0
    nodes = onnx.load(str(output / "model.onnx")).graph.node
    integer = [n.name for n in nodes if n.op_type == "MatMulInteger"]
    plain = [n.name for n in nodes if n.op_type == "MatMul" and _is_ffn_down_projection(_modules_of(n))]
    layers = 2  # the tiny model. Per layer: query, key, value, attention output, FFN input in int8; FFN output fp32
    assert len(integer) == 5 * layers and len(plain) == layers  # the pooler and classifier stay fp32 too
    exported = load_classifier(output).backend.predict_proba(TEXTS)
    source = load_classifier(model_dir, precision="fp32").backend.predict_proba(TEXTS)
    np.testing.assert_allclose(exported, source, atol=0.05)


def test_onnx_model_predicts_but_does_not_train(trained_tiny, tmp_path):
    pytest.importorskip("onnxruntime")
    from trainer.errors import ConfigError

    output = tmp_path / "onnx"
    assert main(["export", "--model", str(trained_tiny[1].model_dir), "--output", str(output), "--format", "onnx"]) == 0
    with pytest.raises(ConfigError, match="expected a trainable model, found an ONNX export"):
        load_classifier(output).backend.fit(["Shares rose."], ["verified"])
    assert main(["export", "--model", str(output), "--output", str(tmp_path / "again")]) == 2
