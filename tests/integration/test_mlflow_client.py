"""MLflow's own scoring-server client against the real API: it waits on /ping, reads /version and
invokes /invocations, and gets answers in the shape `mlflow models serve` gives."""

from __future__ import annotations

import json
from importlib.metadata import version
from urllib.parse import urlsplit

import mlflow.pyfunc
import pandas as pd
import pytest
import requests
from mlflow.pyfunc import scoring_server
from mlflow.pyfunc.scoring_server.client import ScoringServerClient
from mlflow.utils.proto_json_utils import dump_input_data

from app.model.iris import FEATURE_NAMES
from tests.conftest import TrainedStore
from tests.support.processes import Server

pytestmark = pytest.mark.integration

SETOSA = [5.1, 3.5, 1.4, 0.2]
VIRGINICA = [6.7, 3.0, 5.2, 2.3]


def client_for(server: Server) -> ScoringServerClient:
    address = urlsplit(server.base_url)
    return ScoringServerClient(address.hostname, address.port)  # type: ignore[no-untyped-call]


def test_mlflow_client_waits_for_readiness_and_reads_the_version(api_server: Server) -> None:
    client = client_for(api_server)
    client.wait_server_ready(timeout=30)  # type: ignore[no-untyped-call]  # polls GET /ping
    assert client.get_version() == version("mlops-platform")  # type: ignore[no-untyped-call]


def test_mlflow_client_invokes_with_a_dataframe(api_server: Server) -> None:
    frame = pd.DataFrame([SETOSA, VIRGINICA], columns=list(FEATURE_NAMES))
    answer = client_for(api_server).invoke(frame)  # sent as dataframe_split with an index
    assert answer == {"predictions": ["setosa", "virginica"]}
    assert answer.get_predictions()[0].tolist() == ["setosa", "virginica"]


def test_mlflow_client_invokes_with_params(api_server: Server) -> None:
    frame = pd.DataFrame([VIRGINICA], columns=list(FEATURE_NAMES))
    answer = client_for(api_server).invoke(frame, params={"unused": 1})
    assert answer == {"predictions": ["virginica"]}


FRAME = pd.DataFrame([SETOSA, VIRGINICA, SETOSA], columns=list(FEATURE_NAMES))
SAME_REQUESTS = [
    ("csv from pandas", FRAME.to_csv(index=False), "text/csv"),
    (
        "csv with CRLF and a charset",
        FRAME.to_csv(index=False, lineterminator="\r\n"),
        "text/csv; charset=utf-8",
    ),
    ("dataframe_split with index", dump_input_data(FRAME), "application/json"),
    (
        "dataframe_records",
        json.dumps({"dataframe_records": FRAME.to_dict(orient="records")}),
        "application/json",
    ),
    ("instances", json.dumps({"instances": FRAME.to_dict(orient="records")}), "application/json"),
]


@pytest.mark.parametrize(("case", "body", "content_type"), SAME_REQUESTS, ids=[c[0] for c in SAME_REQUESTS])
def test_answers_equal_mlflow_scoring_servers(
    api_server: Server, trained_store: TrainedStore, case: str, body: str, content_type: str
) -> None:
    """The same request to MLflow's scoring server (the handler `mlflow models serve` runs, on the
    same champion, in process) and to ours gives the same status and the same JSON."""
    model = mlflow.pyfunc.load_model(str(trained_store.model_dir))
    schema = model.metadata.get_input_schema()
    expected = scoring_server.invocations(body, content_type, model, schema)  # type: ignore[no-untyped-call]
    response = requests.post(
        f"{api_server.base_url}/invocations", data=body, headers={"Content-Type": content_type}, timeout=10
    )
    assert (response.status_code, response.json()) == (expected.status, json.loads(expected.response))
    assert response.json() == {"predictions": ["setosa", "virginica", "setosa"]}
