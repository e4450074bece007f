"""The model lifecycle against a real MLflow tracking server (SQLite backend) over HTTP.

Train -> register -> @champion behind the quality gate -> the API serves it from the registry ->
a new champion is picked up on SIGHUP without failing requests in flight.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from mlflow import MlflowClient

from tests.support.processes import (
    Server,
    clean_env,
    free_port,
    start_api,
    start_mlflow_server,
    start_process,
    train,
    wait_for_http,
)

pytestmark = pytest.mark.integration

SETOSA = [5.1, 3.5, 1.4, 0.2]


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = start_mlflow_server(tmp_path_factory.mktemp("mlflow-server"))
    yield server
    server.stop()


def summary_of(stdout: str) -> dict[str, object]:
    summary: dict[str, object] = json.loads(stdout.strip().splitlines()[-1])
    return summary


def test_train_gate_serve_and_reload(mlflow_server: Server, tmp_path: Path) -> None:
    uri = mlflow_server.base_url
    first = train(uri, tmp_path / "unused", tmp_path / "train1.log")
    assert first.returncode == 0, first.stderr
    assert "[train] exporting to ONNX" in first.stdout  # progress lines while it works
    v1 = summary_of(first.stdout)
    assert v1["promoted"] is True

    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    version = client.get_model_version("iris-classifier", str(v1["version"]))
    assert version.run_id is not None
    run = client.get_run(version.run_id)
    assert {"accuracy", "f1_macro"} <= set(run.data.metrics)
    assert run.data.params["n_estimators"] == "100"
    artifacts = {a.path for a in client.list_artifacts(version.run_id, "evaluation")}
    assert "evaluation/confusion_matrix.json" in artifacts
    assert "evaluation/fast_model_agreement.json" in artifacts

    # An impossible gate registers the version but leaves the champion alone.
    gated = train(uri, tmp_path / "unused", tmp_path / "train2.log", "--min-accuracy", "1.0")
    assert gated.returncode == 0, gated.stderr
    v2 = summary_of(gated.stdout)
    assert v2["promoted"] is False
    assert "below the threshold" in str(v2["gate"])
    assert client.get_model_version_by_alias("iris-classifier", "champion").version == str(v1["version"])

    api = start_api(
        {"MLOPS_TRACKING_URI": uri, "MLOPS_MODEL_CACHE_DIR": str(tmp_path / "cache")}, tmp_path / "api.log"
    )
    try:
        ready = requests.get(f"{api.base_url}/ready", timeout=5).json()
        assert ready["model"]["version"] == str(v1["version"])
        assert (
            requests.post(f"{api.base_url}/predict", json={"features": SETOSA}, timeout=5).json()[
                "prediction"
            ]
            == "setosa"
        )

        third = train(uri, tmp_path / "unused", tmp_path / "train3.log")
        v3 = summary_of(third.stdout)
        assert v3["promoted"] is True  # equal accuracy is not worse than the champion

        failures: list[str] = []
        answered = 0
        stop = threading.Event()

        def hammer() -> None:
            nonlocal answered
            session = requests.Session()
            while not stop.is_set():
                try:
                    response = session.post(f"{api.base_url}/predict", json={"features": SETOSA}, timeout=10)
                    if response.status_code != 200:
                        failures.append(f"HTTP {response.status_code}: {response.text[:200]}")
                    answered += 1
                except requests.RequestException as error:
                    failures.append(str(error))

        threads = [threading.Thread(target=hammer) for _ in range(4)]
        for thread in threads:
            thread.start()
        time.sleep(1)
        api.signal(signal.SIGHUP)
        deadline = time.monotonic() + 60
        version_now = None
        while time.monotonic() < deadline:
            version_now = requests.get(f"{api.base_url}/ready", timeout=5).json()["model"]["version"]
            if version_now == str(v3["version"]):
                break
            time.sleep(0.5)
        time.sleep(1)
        stop.set()
        for thread in threads:
            thread.join()
        assert version_now == str(v3["version"]), api.log()[-3000:]
        assert answered > 50
        assert failures == []
    finally:
        assert api.stop() == 0  # SIGTERM: graceful, clean exit
    assert "verified iris-classifier version" in api.log()


def test_api_refuses_to_start_on_a_disagreeing_fast_form(trained_store, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import shutil

    model = tmp_path / "model"
    shutil.copytree(trained_store.model_dir, model)
    metadata_path = model / "fast" / "metadata.json"
    metadata = json.loads(metadata_path.read_text())
    metadata["reference"]["probabilities"][0] = [1 / 3, 1 / 3, 1 / 3]
    metadata_path.write_text(json.dumps(metadata))

    port = free_port()
    env = clean_env({"MLOPS_MODEL_SOURCE": "path", "MLOPS_MODEL_PATH": str(model), "MLOPS_PORT": str(port)})
    server = start_process(
        [
            str(Path(sys.executable).parent / "gunicorn"),
            "--config",
            "python:app.serving.gunicorn_conf",
            "app.serving.api:create_app()",
        ],
        env,
        tmp_path / "api.log",
        f"http://127.0.0.1:{port}",
    )
    try:
        code = server.process.wait(timeout=60)
    finally:
        server.stop()
    assert code != 0
    assert "refusing to start" in server.log()
    assert "probabilities differ" in server.log()


def test_api_starts_not_ready_and_picks_up_the_first_champion(tmp_path: Path) -> None:
    """A fresh stack: no champion yet -> /ready 503; after training, workers find it by polling."""
    uri = f"sqlite:///{tmp_path}/empty.db"
    api = start_api(
        {
            "MLOPS_TRACKING_URI": uri,
            "MLOPS_MODEL_CACHE_DIR": str(tmp_path / "cache"),
            "MLOPS_MODEL_POLL_SECONDS": "1",
        },
        tmp_path / "api.log",
        wait_ready=False,
    )
    try:
        assert requests.get(f"{api.base_url}/ready", timeout=5).status_code == 503
        response = requests.post(f"{api.base_url}/predict", json={"features": SETOSA}, timeout=5)
        assert response.status_code == 503
        assert response.json()["error"]["reason"] == "not_ready"
        assert train(uri, tmp_path / "artifacts", tmp_path / "train.log").returncode == 0
        wait_for_http(f"{api.base_url}/ready", timeout=60, process=api.process)
    finally:
        api.stop()


def test_another_alias_is_promoted_and_served(tmp_path: Path) -> None:
    """MLOPS_MODEL_ALIAS is the one alias: training promotes to it and the API serves it."""
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    trained = train(uri, tmp_path / "artifacts", tmp_path / "train.log", MLOPS_MODEL_ALIAS="staging")
    assert trained.returncode == 0, trained.stderr
    summary = summary_of(trained.stdout)
    assert (summary["alias"], summary["promoted"]) == ("staging", True)
    assert "is now @staging" in trained.stdout
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    assert set(client.get_registered_model("iris-classifier").aliases) == {"staging"}

    api = start_api(
        {
            "MLOPS_TRACKING_URI": uri,
            "MLOPS_MODEL_ALIAS": "staging",
            "MLOPS_MODEL_CACHE_DIR": str(tmp_path / "cache"),
        },
        tmp_path / "api.log",
    )
    try:
        ready = requests.get(f"{api.base_url}/ready", timeout=5).json()
        assert ready["model"] == {"name": "iris-classifier", "version": str(summary["version"])}
        response = requests.post(f"{api.base_url}/predict", json={"features": SETOSA}, timeout=5)
        assert response.json()["prediction"] == "setosa"
    finally:
        api.stop()
