"""The Flask app through its test client: contract, errors, OpenAPI, page (no gunicorn)."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient

from app.model.fast_model import load_bundle
from app.model.model_source import LoadedModel, ModelRef
from app.serving.api import create_app
from config.app_settings import ApiSettings, ModelSource


@pytest.fixture(scope="module")
def client(trained_store) -> FlaskClient:  # type: ignore[no-untyped-def]
    loaded = LoadedModel(
        ModelRef("iris-classifier", "1", "path", trained_store.model_dir),
        load_bundle(trained_store.model_dir),
    )
    settings = ApiSettings(
        model_source=ModelSource.PATH, model_path=trained_store.model_dir, max_body_bytes=2048
    )
    return create_app(settings, model=loaded).test_client()


def error_of(response: Any) -> dict[str, Any]:
    assert response.is_json, response.data
    error: dict[str, Any] = response.get_json()["error"]
    return error


def test_old_contract_unchanged(client: FlaskClient) -> None:
    response = client.post("/predict", json={"features": [5.1, 3.5, 1.4, 0.2]})
    assert response.status_code == 200
    body = response.get_json()
    assert body["prediction"] == "setosa"
    assert set(body["probabilities"]) == {"setosa", "versicolor", "virginica"}
    assert body["model"] == {"name": "iris-classifier", "version": "1"}


def test_batch_form(client: FlaskClient) -> None:
    response = client.post("/predict", json={"instances": [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]})
    assert [p["prediction"] for p in response.get_json()["predictions"]] == ["setosa", "virginica"]


def test_invocations(client: FlaskClient) -> None:
    response = client.post("/invocations", json={"inputs": [[5.1, 3.5, 1.4, 0.2]]})
    assert response.get_json() == {"predictions": ["setosa"]}


def test_body_over_limit_is_413(client: FlaskClient) -> None:
    response = client.post("/predict", data="[" + "1," * 3000 + "1]", content_type="application/json")
    assert response.status_code == 413
    assert error_of(response)["reason"] == "body_too_large"


def test_unknown_route_and_wrong_method(client: FlaskClient) -> None:
    assert error_of(client.get("/nope"))["reason"] == "not_found"
    response = client.get("/predict")
    assert response.status_code == 405
    assert "POST" in response.headers["Allow"]
    assert error_of(response)["reason"] == "method_not_allowed"


def test_openapi_documents_every_route(client: FlaskClient) -> None:
    spec = client.get("/openapi.json").get_json()
    assert spec["openapi"].startswith("3.")
    routes = {rule.rule for rule in client.application.url_map.iter_rules() if rule.endpoint != "static"}
    assert set(spec["paths"]) == routes
    assert {"/ping", "/version", "/predict", "/invocations"} <= routes
    row = spec["paths"]["/predict"]["post"]["requestBody"]["content"]["application/json"]["schema"]["oneOf"][
        0
    ]
    assert row["properties"]["features"]["minItems"] == 4


def test_index_page_has_a_form_for_each_feature(client: FlaskClient) -> None:
    html = client.get("/").get_data(as_text=True)
    for feature in ("sepal_length", "sepal_width", "petal_length", "petal_width"):
        assert f'id="{feature}"' in html


def test_not_ready_without_model(tmp_path) -> None:  # type: ignore[no-untyped-def]
    settings = ApiSettings(model_source=ModelSource.PATH, model_path=tmp_path / "missing")
    app = create_app(settings, poll_seconds=3600)
    client = app.test_client()
    assert client.get("/health").status_code == 200
    assert client.get("/ready").status_code == 503
    response = client.post("/predict", json={"features": [5.1, 3.5, 1.4, 0.2]})
    assert response.status_code == 503
    assert error_of(response)["reason"] == "not_ready"
    app.extensions["model_holder"].stop()


def test_openapi_document_is_valid_openapi_3(client: FlaskClient) -> None:
    from openapi_spec_validator import validate

    validate(client.get("/openapi.json").get_json())  # raises on any schema violation
