"""Shared fixtures: a small hand-written corpus, a tiny randomly initialised BERT, isolated MLflow.

Configs written here use absolute paths and their own SQLite tracking store, so tests never touch
the project's data/processed, models/ or mlflow.db.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

FIXTURES = Path(__file__).parent / "fixtures"
CORPUS = FIXTURES / "corpus"
SEED_ARTICLE = Path(__file__).resolve().parents[2] / "shared" / "seed" / "article.txt"


@dataclass
class Project:
    """A throwaway project folder: corpus copy, configs, outputs and tracking store."""

    root: Path

    @property
    def tracking_uri(self) -> str:
        return f"sqlite:///{self.root / 'mlflow.db'}"

    def data_config(self, **changes: Any) -> dict[str, Any]:
        config = {
            "name": "fixture",
            "sources": [
                {
                    "kind": "corpus",
                    "articles": str(self.root / "corpus" / "articles"),
                    "labels": str(self.root / "corpus" / "labels.jsonl"),
                    "metadata": str(self.root / "corpus" / "metadata.jsonl"),
                }
            ],
            "split": {"validation": 0.15, "test": 0.25, "seed": 3},
            "output_dir": str(self.root / "processed"),
        }
        config.update(changes)
        return config

    def write(self, name: str, content: dict[str, Any]) -> Path:
        path = self.root / "configs" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(content, sort_keys=False), encoding="utf-8")
        return path

    def experiment(
        self, run_name: str, model: dict[str, Any], training: dict[str, Any] | None = None, **extra: Any
    ) -> Path:
        """Write data + experiment configs; return the experiment config path."""
        data_path = self.write("data/fixture.yaml", self.data_config())
        content = {
            "run_name": run_name,
            "data": str(data_path),
            "model": model,
            "training": training or {},
            "tracking": {"uri": self.tracking_uri, "experiment": "tests"},
            "output_dir": str(self.root / "models"),
            **extra,
        }
        return self.write(f"{run_name}.yaml", content)


def free_port() -> int:
    """A TCP port on loopback that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_mlflow_server(root: Path, port: int) -> tuple[subprocess.Popen, str]:
    """A real `mlflow server` on loopback (SQLite backend, local artifact store), once it answers."""
    process = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
         "--backend-store-uri", f"sqlite:///{root / 'server.db'}", "--artifacts-destination", str(root / "artifacts"),
         "--workers", "1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        start_new_session=True,  # its own process group: the server's workers stop with it
    )
    uri = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{uri}/health", timeout=2).ok:
                return process, uri
        except requests.RequestException:
            time.sleep(0.5)  # polling a server that is starting up, not synchronising tests
        if process.poll() is not None:
            pytest.fail(f"mlflow server exited: {process.stderr.read()[-2000:]}")
    stop(process, signal.SIGKILL)
    pytest.fail("mlflow server did not answer within 120 s")


def stop(process: subprocess.Popen, sig: signal.Signals = signal.SIGTERM) -> None:
    """Stop a server started by `start_mlflow_server`, and its workers."""
    try:
        os.killpg(process.pid, sig)
    except ProcessLookupError:
        return
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def make_project(root: Path) -> Project:
    shutil.copytree(CORPUS, root / "corpus")
    return Project(root)


@pytest.fixture()
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Project:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return make_project(tmp_path)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer, 32-wide BERT with the bundled MiniLM tokenizer: the real code path, trained in seconds."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    from trainer.models.transformer import default_pretrained

    torch.manual_seed(0)  # the same random weights every session
    path = tmp_path_factory.mktemp("tiny-bert")
    tokenizer = AutoTokenizer.from_pretrained(default_pretrained())
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=37,
        max_position_embeddings=128,
    )
    BertModel(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


TINY_TRAINING = {"epochs": 3, "batch_size": 8, "learning_rate": 2e-3, "seed": 7, "precision": "fp32"}


def tiny_model_section(tiny_model_dir: Path) -> dict[str, Any]:
    return {"backend": "transformer", "pretrained": str(tiny_model_dir), "max_length": 64}


@pytest.fixture(scope="session")
def trained_tiny(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> tuple[Project, Any]:
    """One tiny transformer run through the real `train` path, shared by the read-only tests."""
    from trainer.config import load_config
    from trainer.workflows.train import train

    project = make_project(tmp_path_factory.mktemp("trained-tiny"))
    config_path = project.experiment("tiny", tiny_model_section(tiny_model_dir), TINY_TRAINING)
    return project, train(load_config(config_path))


@pytest.fixture(scope="session")
def trained_sklearn(tmp_path_factory: pytest.TempPathFactory) -> tuple[Project, Any]:
    from trainer.config import load_config
    from trainer.workflows.train import train

    project = make_project(tmp_path_factory.mktemp("trained-sklearn"))
    return project, train(load_config(project.experiment("tfidf", {"backend": "sklearn"})))
