"""What a model folder and its runs record of their origin: the lock, provenance, the model card,
and the library output that `train` and `evaluate` no longer print."""

from __future__ import annotations

import json
import logging
import re
import shutil
import tomllib
import warnings
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import yaml
from mlflow import MlflowClient
from packaging.requirements import Requirement

from trainer.outputs.card import CARD_FILE
from trainer.config import TrackingConfig
from trainer.workflows.evaluate import evaluate
from trainer.labels import LABELS
from trainer.outputs.model_folder import write_manifest
from trainer.outputs.provenance import FREEZE_FILE, PROVENANCE_FILE

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "requirements" / "lock.txt"


def _locked() -> dict[str, str]:
    pins = {}
    for line in LOCK.read_text().splitlines():
        if line and not line.startswith((" ", "#", "-")):
            name, _, pinned = line.partition("==")
            pins[name.strip().lower()] = pinned.strip()
    return pins


def test_lock_pins_every_dependency_and_extra_of_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = list(project["dependencies"]) + [r for extra in project["optional-dependencies"].values() for r in extra]
    pins = _locked()
    for requirement in map(Requirement, wanted):
        name = requirement.name.lower()
        assert name in pins, f"{name} is in pyproject.toml but not in {LOCK.name}; run `make lock`"
        assert requirement.specifier.contains(pins[name], prereleases=True), (name, pins[name])
    assert pins["torch"] == "2.13.0+cpu"  # the CPU build on this machine's disk, never a CUDA download


def test_installed_packages_are_the_locked_versions():
    """`make setup` installs with the lock as constraints: what is installed is what is locked."""
    differing = {}
    for name, pinned in _locked().items():
        try:
            installed = version(name)
        except PackageNotFoundError:
            continue  # an extra this venv does not have (bench)
        if installed != pinned:
            differing[name] = (installed, pinned)
    assert not differing, f"installed vs locked: {differing}; run `make setup`"


def _front_matter(card: str) -> dict:
    assert card.startswith("---\n")
    return yaml.safe_load(card.split("---\n", 2)[1])


def _card_results(card: str) -> dict[str, dict[str, float]]:
    results = {}
    for entry in _front_matter(card)["model-index"][0]["results"]:
        results[entry["dataset"]["name"]] = {m["name"]: m["value"] for m in entry["metrics"]}
    return results


def test_model_folder_holds_card_and_provenance(trained_sklearn):
    project, trained = trained_sklearn
    folder = trained.model_dir
    record = json.loads((folder / PROVENANCE_FILE).read_text())
    assert len(record["code_sha256"]) == 64 and record["python"].startswith("3.")
    assert record["git"]["commit"] is None or len(record["git"]["commit"]) == 40
    assert record["lock"]["path"] == "requirements/lock.txt" and len(record["lock"]["sha256"]) == 64
    assert record["packages"]["torch"] == version("torch") and record["hardware"]["cpu"]
    assert record["precision"] == "fp32" and record["bf16"] is False
    assert f"torch=={version('torch')}" in (folder / FREEZE_FILE).read_text()

    run = MlflowClient(tracking_uri=project.tracking_uri).get_run(trained.run_id)
    assert run.data.tags["trainer.code_sha256"] == record["code_sha256"]
    assert run.data.tags["trainer.lock_sha256"] == record["lock"]["sha256"]
    assert run.data.tags["trainer.git_commit"] == str(record["git"]["commit"])
    client = MlflowClient(tracking_uri=project.tracking_uri)
    logged = {a.path for a in client.list_artifacts(trained.run_id, "provenance")}
    assert logged == {"provenance/provenance.json", "provenance/pip-freeze.txt"}
    assert {a.path for a in client.list_artifacts(trained.run_id, "model_card")} == {"model_card/README.md"}


def test_card_figures_equal_metrics_json(trained_sklearn):
    folder = trained_sklearn[1].model_dir
    card = (folder / CARD_FILE).read_text()
    test = json.loads((folder / "metrics.json").read_text())["test"]
    report = json.loads((folder / "test_report" / "report.json").read_text())
    figures = _card_results(card)[report["data"]]
    assert figures["macro-F1"] == test["macro_f1"] and figures["accuracy"] == test["accuracy"]
    for label in LABELS:
        values = test["per_label"][label]
        assert figures[f"{label} F1"] == values["f1"]
        low, high = report["ci"][f"{label}_f1"]
        row = f"| {label} | {values['precision']:.3f} | {values['recall']:.3f} | {values['f1']:.3f} [{low:.3f}, {high:.3f}] | {values['support']} |"
        assert row in card
    assert f"# {folder.name}\n" in card and "`max_length`" not in card  # TF-IDF reads whole sentences
    for definition in ("writer asserts the claim", "relays the claim from a source", "marks the claim as unconfirmed"):
        assert definition in card
    counts = json.loads((folder / "run.json").read_text())["dataset"]["label_counts"]["train"]
    assert "| train | " in card and " | ".join(str(counts.get(label, 0)) for label in LABELS) in card


def test_evaluate_adds_its_figures_to_the_card_and_warns_on_other_code(trained_sklearn, tmp_path, caplog):
    folder = tmp_path / "model"
    shutil.copytree(trained_sklearn[1].model_dir, folder)
    record = json.loads((folder / PROVENANCE_FILE).read_text())
    (folder / PROVENANCE_FILE).write_text(json.dumps({**record, "code_sha256": "0" * 64}))  # trained by other code
    write_manifest(folder)  # as that code saved it
    data = tmp_path / "dev.jsonl"
    rows = [
        {"article": "a", "text": "The council said the budget would pass.", "label": "attributed"},
        {"article": "a", "text": "The budget passed 6 to 3.", "label": "verified"},
        {"article": "b", "text": "The figures could not be verified.", "label": "unverified"},
        {"article": "b", "text": "Officials said the road was closed.", "label": "attributed"},
    ]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with caplog.at_level(logging.WARNING, logger="trainer"):
        result = evaluate(folder, data=data, tracking=TrackingConfig(enabled=False), n_resamples=50)
    assert any("trained by other code than evaluates it now: the code differs" in r.message for r in caplog.records)
    figures = _card_results((folder / CARD_FILE).read_text())["dev"]
    assert figures["macro-F1"] == result.metrics["macro_f1"]
    assert json.loads((result.report_dir / PROVENANCE_FILE).read_text())["code_sha256"] == record["code_sha256"]


def test_same_code_gives_no_provenance_warning(trained_sklearn, tmp_path, caplog):
    folder = trained_sklearn[1].model_dir
    with caplog.at_level(logging.WARNING, logger="trainer"):
        evaluate(folder, split="test", output=tmp_path / "r", tracking=TrackingConfig(enabled=False), n_resamples=20)
    assert not [r for r in caplog.records if "other code" in r.message]


def test_logging_a_model_warns_nothing_about_type_hints(project):
    from trainer.config import load_config
    from trainer.workflows.train import train

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = train(load_config(project.experiment("hints", {"backend": "sklearn"})))
    assert result.model_uri is not None
    assert not [w for w in caught if "type hint" in str(w.message)]


def test_new_head_is_one_line_not_a_load_report(tiny_model_dir, caplog, capfd):
    from trainer.config import TrainingConfig, TransformerModel
    from trainer.models.transformer import TransformerBackend

    with caplog.at_level(logging.INFO, logger="trainer"):
        TransformerBackend.from_config(TransformerModel(pretrained=str(tiny_model_dir)),
                                       TrainingConfig(precision="fp32"))
    assert [r.message for r in caplog.records if "classification head" in r.message] == [
        "new classification head: 3 labels"
    ]
    captured = capfd.readouterr()
    assert "LOAD REPORT" not in captured.err + captured.out and "MISSING" not in captured.err + captured.out


def test_an_encoder_missing_weights_is_warned_about(tiny_model_dir, tmp_path, caplog):
    from safetensors.torch import load_file, save_file

    from trainer.config import TrainingConfig, TransformerModel
    from trainer.models.transformer import TransformerBackend

    broken = tmp_path / "broken"
    shutil.copytree(tiny_model_dir, broken)
    weights = load_file(broken / "model.safetensors")
    save_file({k: v for k, v in weights.items() if "layer.1." not in k}, broken / "model.safetensors")
    with caplog.at_level(logging.WARNING, logger="trainer"):
        TransformerBackend.from_config(TransformerModel(pretrained=str(broken)), TrainingConfig(precision="fp32"))
    assert any("weights are not in the checkpoint and start at random" in r.message for r in caplog.records)


def test_train_prints_the_projects_lines_not_the_libraries(project, tiny_model_dir):
    """`trainer train` on a transformer: no load report, no library progress bars, no MLflow warnings."""
    import os
    import subprocess
    import sys

    from tests.conftest import TINY_TRAINING, tiny_model_section

    config = project.experiment("quiet", tiny_model_section(tiny_model_dir), {**TINY_TRAINING, "epochs": 1})
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "HF_HUB_DISABLE"))}
    done = subprocess.run([sys.executable, "-m", "trainer.cli", "train", "--config", str(config)],
                          capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    output = done.stdout + done.stderr
    assert "new classification head: 3 labels" in output
    assert re.search(r"class weights \{'verified': \d\.\d{1,2}, 'attributed': \d\.\d{1,2}, ", output)
    for noise in ("LOAD REPORT", "MISSING", "Loading weights", "Writing model shards", "Downloading artifacts",
                  "Saving the dataset", "type hint", "Creating initial MLflow database tables", "\x1b["):
        assert noise not in output, noise
