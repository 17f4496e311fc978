"""Config loading: defaults < file < --set, and one-line errors for every user mistake."""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml

from trainer.cli import main
from trainer.config import load_config, load_data_config
from trainer.errors import ConfigError


def test_defaults_file_and_overrides_precedence(project):
    path = project.experiment("prec", {"backend": "sklearn"}, {"epochs": 4})
    config = load_config(path)
    assert config.training.epochs == 4  # file beats default
    assert config.training.batch_size == 32  # default kept
    config = load_config(path, ["training.epochs=2", "data.split.seed=99"])
    assert config.training.epochs == 2  # command line beats file
    assert config.data.split.seed == 99  # the inlined data config can be overridden too
    assert config.data.name == "fixture"


def test_unknown_key_suggests_closest(project):
    path = project.experiment("typo", {"backend": "sklearn"}, {"epocs": 3})
    with pytest.raises(ConfigError, match=r"typo\.yaml.*training\.epocs: unknown key \(did you mean 'epochs'\?\)"):
        load_config(path)


def test_unknown_key_in_override_names_the_flag(project):
    path = project.experiment("ov", {"backend": "sklearn"})
    with pytest.raises(ConfigError, match=r"^--set training\.learning_rat: unknown key \(did you mean 'learning_rate'"):
        load_config(path, ["training.learning_rat=0.1"])


def test_wrong_type_says_expected_and_found(project):
    path = project.experiment("wt", {"backend": "sklearn"}, {"epochs": "two"})
    with pytest.raises(ConfigError, match=r"training\.epochs: expected a valid integer.*found \"two\""):
        load_config(path)


def test_out_of_range_value(project):
    path = project.experiment("neg", {"backend": "sklearn"}, {"learning_rate": -1})
    with pytest.raises(ConfigError, match=r"training\.learning_rate: expected .*greater than 0, found -1"):
        load_config(path)


def test_unknown_backend(project):
    path = project.experiment("bk", {"backend": "svm"})
    with pytest.raises(ConfigError, match=r"model: expected one of 'transformer', 'sklearn', 'rules', found 'svm'"):
        load_config(path)


def test_missing_data_path_names_key(project):
    data = project.data_config()
    data["sources"][0]["labels"] = str(project.root / "nope.jsonl")
    path = project.write("data/bad.yaml", data)
    with pytest.raises(ConfigError, match=r"bad\.yaml: sources\[0\]\.labels: expected an existing path, found .*nope\.jsonl"):
        load_data_config(path)


def test_missing_config_file():
    with pytest.raises(ConfigError, match=r"missing\.yaml: config file not found"):
        load_config("missing.yaml")


def test_missing_referenced_data_config(project):
    path = project.write("x.yaml", {"run_name": "x", "data": "configs/data/none.yaml"})
    with pytest.raises(ConfigError, match=r"data: expected a data config file, found 'configs/data/none.yaml'"):
        load_config(path)


def test_bad_override_syntax(project):
    path = project.experiment("syn", {"backend": "sklearn"})
    with pytest.raises(ConfigError, match=r"expected KEY\.PATH=VALUE"):
        load_config(path, ["training.epochs"])


def test_invalid_yaml_names_line(project):
    path = project.root / "broken.yaml"
    path.write_text("run_name: x\ntraining: [unclosed\n")
    with pytest.raises(ConfigError, match=r"broken\.yaml: line \d+: not valid YAML"):
        load_config(path)


def test_validate_prints_resolved_config_with_defaults(project, capsys):
    path = project.experiment("val", {"backend": "sklearn"})
    assert main(["validate", "--config", str(path), "--set", "training.seed=5"]) == 0
    resolved = yaml.safe_load(capsys.readouterr().out)
    assert resolved["training"]["seed"] == 5
    assert resolved["training"]["early_stopping_patience"] == 2  # a default, printed
    assert resolved["data"]["sources"][0]["kind"] == "corpus"


def test_cli_error_is_one_line_exit_2_no_traceback(project):
    path = project.experiment("cli", {"backend": "sklearn"}, {"epocs": 3})
    proc = subprocess.run(
        [sys.executable, "-m", "trainer.cli", "validate", "--config", str(path)], capture_output=True, text=True
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "did you mean 'epochs'" in lines[0]


def test_set_data_names_another_data_config_file(tmp_path, monkeypatch):
    from pathlib import Path

    from trainer.config import load_config

    monkeypatch.chdir(Path(__file__).resolve().parents[1])
    config = load_config("configs/default.yaml", ["data=configs/data/polnear.yaml", "data.split.seed=4"])
    assert config.data.name == "polnear" and config.data.split.seed == 4


def test_version_is_the_installed_one(capsys):
    from importlib.metadata import version

    from trainer.cli import main

    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0 and capsys.readouterr().out.strip() == f"trainer {version('trainer')}"
