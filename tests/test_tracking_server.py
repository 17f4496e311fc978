"""Remote tracking against a real `mlflow server`, the model registry, and the pyfunc model's inputs."""

from __future__ import annotations

import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from tests.conftest import free_port, start_mlflow_server, stop
from trainer import load_classifier
from trainer.config import TrackingConfig, load_config
from trainer.workflows.evaluate import evaluate
from trainer.labels import LABELS
from trainer.workflows.train import train


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory):
    """A real `mlflow server` on loopback: SQLite backend, local artifact store, stopped after."""
    process, uri = start_mlflow_server(tmp_path_factory.mktemp("mlflow-server"), free_port())
    yield uri
    stop(process)


def test_train_and_evaluate_over_http_and_read_back(project, mlflow_server, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server)
    config = load_config(project.experiment("remote", {"backend": "sklearn"}), [f"tracking.uri={mlflow_server}"])
    result = train(config, register_as="sourcing-remote", alias="champion")
    assert result.tracking_error is None and result.run_id

    client = MlflowClient(tracking_uri=mlflow_server)
    run = client.get_run(result.run_id)
    assert run.data.params["model.backend"] == "sklearn"
    assert run.data.metrics["test_macro_f1"] == pytest.approx(result.metrics["test"]["macro_f1"])
    assert "test_report/report.html" in {a.path for a in client.list_artifacts(result.run_id, "test_report")}

    # the registry: the alias points at the new version, and the model loads and predicts from it
    version = client.get_model_version_by_alias("sourcing-remote", "champion")
    assert version.run_id == result.run_id
    clf = load_classifier("models:/sourcing-remote@champion")
    local = load_classifier(result.model_dir)
    texts = ["Officials said the bridge was closed.", "The bridge was built in 1931."]
    assert [p.label for p in clf.predict(texts)] == [p.label for p in local.predict(texts)]

    evaluation = evaluate(result.model_dir, split="test", tracking=TrackingConfig(uri=mlflow_server), n_resamples=50)
    eval_run = client.get_run(evaluation.run_id)
    assert eval_run.data.tags["trainer.training_run_id"] == result.run_id


def test_pyfunc_takes_a_dataframe_and_a_list(trained_sklearn, monkeypatch):
    import mlflow

    project, result = trained_sklearn
    mlflow.set_tracking_uri(project.tracking_uri)
    model = mlflow.pyfunc.load_model(result.model_uri)
    texts = ["Officials said the bridge was closed.", "Rebels reportedly took the town."]
    from_list = model.predict(texts)
    from_frame = model.predict(pd.DataFrame({"text": texts}))
    assert list(from_list["label"]) == list(from_frame["label"]) and set(from_list["label"]) <= set(LABELS)
    assert list(from_list.columns) == ["label", *[f"p_{label}" for label in LABELS], "truncated"]
    assert model.metadata.signature is not None
    assert model.metadata.saved_input_example_info is not None  # logged with its input example too


def test_unreachable_server_still_saves_the_model(project):
    port = free_port()  # nothing listens there
    config = load_config(project.experiment("down", {"backend": "sklearn"}), [f"tracking.uri=http://127.0.0.1:{port}"])
    result = train(config)
    assert "unreachable" in (result.tracking_error or "")
    assert load_classifier(result.model_dir).predict(["The mayor said so."])[0].label in LABELS


def test_a_database_store_that_nobody_listens_on_is_one_connect_not_mlflows_retries():
    import socket

    from trainer.outputs.tracking_store import check_reachable

    with socket.socket() as listening:
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        port = listening.getsockname()[1]
        check_reachable(f"postgresql://me:hunter2@127.0.0.1:{port}/mlflow")  # someone listens: no error
    with pytest.raises(ConnectionError, match=rf"tracking database 127.0.0.1:{port} is unreachable") as caught:
        check_reachable(f"postgresql+psycopg2://me:hunter2@127.0.0.1:{port}/mlflow")
    assert "hunter2" not in str(caught.value)
    check_reachable("postgresql:///mlflow")  # a Unix socket: the driver tells
