"""Correctness of the fast paths: sorted batches equal the plain path, precision settings, int8 export."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import torch

from trainer import load_classifier
from trainer.cli import main
from trainer.config import TrainingConfig, TransformerModel
from trainer.models import int8
from trainer.models.batching import sorted_batches
from trainer.models.onnx import _is_ffn_down_projection, _modules_of
from trainer.models.transformer import TransformerBackend, fast_bf16, resolve_precision
from trainer.models.loop import EpochDone, training_batches

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
    meta = json.loads((output / "trainer_model.json").read_text())
    assert meta["quantize"] == "int8" and (output / int8.INT8_FILE).is_file()
    assert meta["int8"]["keep"] == [f"bert.encoder.layer.{i}.output.dense" for i in range(2)]  # FFN down in bf16
    clf = load_classifier(output)
    expected, _ = int8.choose("auto", meta["int8"])
    assert clf.backend.precision == ("int8" if expected else clf.backend.precision)
    predictions = clf.predict(TEXTS)
    assert all(sum(p.probabilities.values()) == pytest.approx(1, abs=1e-5) for p in predictions)
    assert main(["export", "--model", str(trained_tiny[1].model_dir), "--output", str(output)]) == 2  # exists


@pytest.mark.skipif(not int8.vnni(), reason="static int8 needs a CPU with VNNI or AMX")
def test_static_int8_keeps_the_labels_of_fp32(trained_tiny):
    """Calibrated on real sentences, static int8 gives fp32's labels on other real sentences."""
    source = load_classifier(trained_tiny[1].model_dir, precision="fp32").backend
    sentences = int8.corpus_sentences()
    calibrate_on, check_on = sentences[0::2][:256], sentences[1::2][:400]
    stats = int8.calibrate(source.model, lambda: source.predict_proba(calibrate_on))
    reference = source.predict_proba(check_on)
    model = copy.deepcopy(source.model)
    quantized = TransformerBackend(training=source.training, model=int8.quantize_static(
        model, stats, int8.ffn_down_projections(model)), tokenizer=source.tokenizer, max_length=source.max_length)
    # per layer: query-key-value as one product, the attention output, the FFN up-projection with its GELU
    assert sum(isinstance(m, int8.StaticInt8Linear) for m in quantized.model.modules()) == 2 * 3
    fast = quantized.predict_proba(check_on)
    assert (fast.argmax(1) == reference.argmax(1)).mean() >= 0.98
    np.testing.assert_allclose(fast, reference, atol=0.05)


def test_int8_export_precision_is_a_choice(trained_tiny, tmp_path):
    """fp32 on an int8 export runs its fp32 weights: the source's probabilities exactly."""
    output = tmp_path / "int8"
    assert main(["export", "--model", str(trained_tiny[1].model_dir), "--output", str(output), "--format", "int8"]) == 0
    forced = load_classifier(output, precision="fp32").backend
    assert forced.precision == "fp32" and "as asked" in forced.precision_choice
    source = load_classifier(trained_tiny[1].model_dir, precision="fp32").backend
    np.testing.assert_allclose(forced.predict_proba(TEXTS), source.predict_proba(TEXTS), atol=1e-6)


@pytest.mark.parametrize(("check", "precision", "runs_int8"), [
    ({"agreement": 0.999, "speedup_vs_bf16": 1.4, "cpu": "elsewhere"}, "auto", True),
    ({"agreement": 0.990, "speedup_vs_bf16": 1.4, "cpu": "elsewhere"}, "auto", False),  # below the bound
    ({"agreement": 0.999, "speedup_vs_bf16": 1.4, "cpu": "elsewhere"}, "bf16", False),  # asked for bf16
])
def test_auto_runs_int8_only_within_the_agreement_bound(monkeypatch, check, precision, runs_int8):
    monkeypatch.setattr(int8, "vnni", lambda: True)
    assert int8.choose(precision, check)[0] is runs_int8


def test_auto_skips_int8_where_it_was_measured_slower(monkeypatch):
    from trainer.outputs.provenance import hardware

    monkeypatch.setattr(int8, "vnni", lambda: True)
    here = hardware()["cpu"]
    assert int8.choose("auto", {"agreement": 0.999, "speedup_vs_bf16": 0.9, "cpu": here}) == (
        False, "not int8: 0.90x bf16 when measured on this CPU")
    monkeypatch.setattr(int8, "vnni", lambda: False)
    assert int8.choose("auto", {"agreement": 0.999, "speedup_vs_bf16": 1.5, "cpu": here})[0] is False


def test_token_budget_batches_fit_and_give_the_same_probabilities(trained_tiny):
    backend = load_classifier(trained_tiny[1].model_dir, precision="fp32").backend
    ids = backend.encode(TEXTS)
    batches = list(sorted_batches(ids, 4, token_budget=64))
    assert sorted(i for b in batches for i in b) == list(range(len(TEXTS)))
    assert all(len(b) * max(len(ids[i]) for i in b) <= 64 or len(b) == 1 for b in batches)
    assert max(len(b) for b in batches) > 4  # short sentences share a batch beyond the sentence count
    plain = backend.predict_proba(TEXTS, batch_size=4)
    backend.token_budget = 64
    np.testing.assert_allclose(backend.predict_proba(TEXTS, batch_size=4), plain, atol=1e-5)


def test_training_batches_are_bucketed_random():
    """Every example once per epoch; mega-batches of a quarter of the split (12 batches of 8 of 400), so
    epochs differ."""
    lengths = np.random.default_rng(0).integers(5, 60, size=400)
    rng = np.random.default_rng(1)
    first, second = (training_batches(lengths, 8, 12, rng) for _ in range(2))
    for batches in (first, second):
        assert sorted(int(i) for b in batches for i in b) == list(range(400))
    spread = [lengths[b].max() - lengths[b].min() for b in first]
    assert np.median(spread) <= 6  # sorted within a mega-batch: little padding
    assert {tuple(sorted(b)) for b in first} != {tuple(sorted(b)) for b in second}


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
    backend = TransformerBackend.from_config(TransformerModel(pretrained=str(tiny_model_dir)), training)
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


def test_onnx_export_keeps_the_fitted_offsets(trained_tiny, tmp_path):
    """class_bias offsets move labels: an export without them would label differently from its source."""
    import shutil

    from trainer.outputs.model_folder import write_manifest

    pytest.importorskip("onnxruntime")
    model_dir = tmp_path / "biased"
    shutil.copytree(trained_tiny[1].model_dir, model_dir)
    record = {"temperature": 0.8, "fitted_on": "x:validation",
              "bias": {"verified": 0.0, "attributed": -0.5, "unverified": -2.0}}
    (model_dir / "temperature.json").write_text(json.dumps(record))
    write_manifest(model_dir)
    output = tmp_path / "onnx"
    assert main(["export", "--model", str(model_dir), "--output", str(output)]) == 0
    exported, source = load_classifier(output), load_classifier(model_dir, precision="fp32")
    assert exported.bias == source.bias == record["bias"] and exported.temperature == 0.8
    for mine, theirs in zip(exported.predict(TEXTS), source.predict(TEXTS)):
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


@pytest.fixture
def busy_cores(monkeypatch):
    """A governor that sees 3 busy processes on 2 cores: batches on 2 single-thread workers at once."""
    from trainer.infra import threads

    before = torch.get_num_threads()
    monkeypatch.setattr(threads, "runnable_elsewhere", lambda: 3.0)
    threads.use(threads.ThreadGovernor(cores=2, quota=None))
    yield threads.governor()
    threads.use(None)
    torch.set_num_threads(before)


def test_batches_on_workers_give_the_probabilities_of_one_thread(trained_tiny, busy_cores):
    backend = load_classifier(trained_tiny[1].model_dir, precision="fp32").backend
    on_workers = backend.predict_proba(TEXTS, batch_size=4)
    embedded = backend.embed(TEXTS, batch_size=4)
    assert (busy_cores.threads, busy_cores.workers) == (1, 2)
    from trainer.infra import threads

    threads.use(threads.ThreadGovernor(fixed=1))
    np.testing.assert_allclose(on_workers, backend.predict_proba(TEXTS, batch_size=4), atol=1e-6)
    np.testing.assert_allclose(embedded, backend.embed(TEXTS, batch_size=4), atol=1e-6)


def test_onnx_batches_on_workers_give_the_source_probabilities(trained_tiny, tmp_path, busy_cores):
    pytest.importorskip("onnxruntime")
    model_dir = trained_tiny[1].model_dir
    output = tmp_path / "onnx"
    assert main(["export", "--model", str(model_dir), "--output", str(output)]) == 0
    exported = load_classifier(output).backend.predict_proba(TEXTS, batch_size=4)
    assert busy_cores.workers == 2
    source = load_classifier(model_dir, precision="fp32").backend.predict_proba(TEXTS, batch_size=4)
    np.testing.assert_allclose(exported, source, atol=1e-4)


@pytest.mark.skipif(not int8.vnni(), reason="static int8 needs a CPU with VNNI or AMX")
def test_static_int8_batches_on_workers_give_the_probabilities_of_one_thread(trained_tiny, tmp_path, busy_cores,
                                                                            monkeypatch):
    """The query-key-value product holds its outputs between three calls: per thread, so two batches at
    once do not take each other's."""
    output = tmp_path / "int8"
    assert main(["export", "--model", str(trained_tiny[1].model_dir), "--output", str(output), "--format", "int8"]) == 0
    monkeypatch.setattr(int8, "choose", lambda precision, check: (True, "static int8 (forced here)"))
    backend = load_classifier(output).backend
    assert backend.precision == "int8"
    texts = TEXTS * 4
    on_workers = backend.predict_proba(texts, batch_size=2)
    assert busy_cores.workers == 2
    from trainer.infra import threads

    threads.use(threads.ThreadGovernor(fixed=1))
    np.testing.assert_allclose(on_workers, backend.predict_proba(texts, batch_size=2), atol=1e-6)
