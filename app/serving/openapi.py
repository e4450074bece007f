"""The OpenAPI 3 description of every endpoint, built from the model's feature and class names.

Exact on purpose: every object lists its required fields and refuses others where the server
does, the branches of each `oneOf` cannot both match, and the server accepts every request the
document allows (tests/integration/test_openapi_properties.py checks both directions). The one
rule JSON Schema cannot state is said in words: the columns of a columnar `inputs` have equal
lengths.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.metadata import version
from typing import Any

from app.serving.csv_payloads import CSV_MEDIA_TYPE, csv_pattern
from app.serving.page_policy import PAGE_HEADERS
from app.serving.payloads import REASONS

Schema = dict[str, Any]

# Error reasons the app adds to the payload parser's: routing, readiness and the last resort.
APP_REASONS = ("not_found", "method_not_allowed", "not_ready", "internal_error")
ERROR_TEXT = {
    400: "Body is not valid JSON (or CSV)",
    404: "Unknown route",
    405: "Method not allowed",
    413: "Body larger than the size limit",
    415: "Content-Type is not one this route reads",
    422: "Well-formed body that is not a valid request (the message names the field)",
    503: "No model loaded yet",
}
REQUEST_ERRORS = (400, 413, 415, 422, 503)


def _json(schema: Schema, description: str) -> Schema:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*statuses: int) -> Schema:
    return {str(s): _json({"$ref": "#/components/schemas/Error"}, ERROR_TEXT[s]) for s in statuses}


def _object(properties: Schema, required: list[str] | None = None) -> Schema:
    """An object with these properties (all required unless said) and no others."""
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties) if required is None else required,
        "additionalProperties": False,
    }


@dataclass(frozen=True)
class Schemas:
    """The building blocks that depend on the model: rows, records, class labels, predictions."""

    features: tuple[str, ...]
    max_rows: int
    row: Schema
    record: Schema
    rows: Schema
    records: Schema
    label: Schema
    prediction: Schema

    @classmethod
    def of(cls, feature_names: tuple[str, ...], class_names: tuple[str, ...], max_rows: int) -> Schemas:
        n = len(feature_names)
        row = {
            "type": "array",
            "items": {"type": "number"},
            "minItems": n,
            "maxItems": n,
            "description": f"Features in this order: {', '.join(feature_names)}",
            "example": [5.1, 3.5, 1.4, 0.2],
        }
        record = _object({name: {"type": "number"} for name in feature_names})
        label = {"type": "string", "enum": list(class_names)}
        probability = {"type": "number", "minimum": 0, "maximum": 1}
        probabilities = _object({c: probability for c in class_names})
        return cls(
            features=feature_names,
            max_rows=max_rows,
            row=row,
            record=record,
            rows={"type": "array", "items": row, "minItems": 1, "maxItems": max_rows},
            records={"type": "array", "items": record, "minItems": 1, "maxItems": max_rows},
            label=label,
            prediction=_object({"prediction": label, "probabilities": probabilities}),
        )

    def columnar(self) -> Schema:
        column = {"type": "array", "items": {"type": "number"}, "minItems": 1, "maxItems": self.max_rows}
        schema = _object({name: column for name in self.features})
        schema["description"] = "One list of values per feature; every list has the same length."
        return schema


MODEL_INFO = _object({"name": {"type": "string"}, "version": {"type": "string"}})


def predict_operation(schemas: Schemas) -> Schema:
    one_row = _object({**schemas.prediction["properties"], "model": MODEL_INFO})
    batch = _object({"predictions": {**schemas.rows, "items": schemas.prediction}, "model": MODEL_INFO})
    request = {"oneOf": [_object({"features": schemas.row}), _object({"instances": schemas.rows})]}
    return {
        "summary": "Predict one row (features) or a batch (instances)",
        "requestBody": {"required": True, "content": {"application/json": {"schema": request}}},
        "responses": {
            "200": _json({"oneOf": [one_row, batch]}, "The class (and probabilities) for each row"),
            **_errors(*REQUEST_ERRORS),
        },
    }


def mlflow_input(schemas: Schemas) -> Schema:
    """MLflow's JSON input: exactly one of four forms, plus optional params."""
    n = len(schemas.features)
    columns = {
        "type": "array",
        "items": {"type": "string", "enum": list(schemas.features)},
        "minItems": n,
        "maxItems": n,
        "uniqueItems": True,
        "description": "Names of the values in each row, any order; without it, the model's order.",
    }
    label = {"anyOf": [{"type": "number"}, {"type": "string"}]}
    index = {"type": "array", "items": label, "description": "Row labels (not used)."}
    forms = {
        "dataframe_split": _object({"columns": columns, "data": schemas.rows, "index": index}, ["data"]),
        "dataframe_records": schemas.records,
        "instances": {"oneOf": [schemas.rows, schemas.records]},
        "inputs": {"oneOf": [schemas.rows, schemas.records, schemas.columnar()]},
    }
    params = {"type": "object", "description": "Inference parameters (this model takes none)."}
    return {"oneOf": [_object({key: form, "params": params}, [key]) for key, form in forms.items()]}


def invocations_operation(schemas: Schemas) -> Schema:
    csv_body = {
        "type": "string",
        "pattern": csv_pattern(schemas.features, schemas.max_rows),
        "description": "A header row with the feature names in the model's order, then one row of "
        "decimal numbers per line (no quoting), as `mlflow models serve` takes it.",
    }
    predictions = _object({"predictions": {**schemas.rows, "items": schemas.label}})
    return {
        "summary": "MLflow scoring-server protocol",
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": mlflow_input(schemas)},
                CSV_MEDIA_TYPE: {"schema": csv_body},
            },
        },
        "responses": {"200": _json(predictions, "One class per row"), **_errors(*REQUEST_ERRORS)},
    }


def _text(media_type: str, description: str) -> Schema:
    return {"description": description, "content": {media_type: {"schema": {"type": "string"}}}}


def _get(summary: str, responses: Schema) -> Schema:
    return {"get": {"summary": summary, "responses": responses}}


def get_paths() -> Schema:
    """The GET endpoints: their answers do not depend on the model."""
    ready_body = _object({"status": {"type": "string", "enum": ["ready"]}, "model": MODEL_INFO})
    ready = {"200": _json(ready_body, "Ready"), **_errors(503)}
    alive = _object({"status": {"type": "string", "enum": ["alive"]}})
    page = _text("text/html", "HTML")
    page["headers"] = {name: {"schema": {"type": "string"}, "required": True} for name in PAGE_HEADERS}
    return {
        "/health": _get("Liveness", {"200": _json(alive, "Alive")}),
        "/ready": _get("Readiness: 200 once a verified model is loaded", ready),
        "/ping": _get("Readiness under the name MLflow's scoring server uses", ready),
        "/version": _get(
            "The server's version, as MLflow's scoring server gives its own",
            {"200": _text("text/plain", "Version")},
        ),
        "/metrics": _get("Prometheus metrics", {"200": _text("text/plain", "Prometheus text format")}),
        "/openapi.json": _get("This document", {"200": _json({"type": "object"}, "OpenAPI")}),
        "/": _get("A page with a form to try predictions", {"200": page}),
    }


def error_schema() -> Schema:
    error = _object(
        {
            "status": {"type": "integer"},
            "reason": {"type": "string", "enum": [*REASONS, *APP_REASONS]},
            "message": {"type": "string"},
        }
    )
    return _object({"error": error})


def build_spec(feature_names: tuple[str, ...], class_names: tuple[str, ...], max_rows: int) -> Schema:
    schemas = Schemas.of(feature_names, class_names, max_rows)
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "mlops-platform prediction API",
            "version": version("mlops-platform"),
            "description": "Iris classifier served from its ONNX fast form.",
        },
        "paths": {
            "/predict": {"post": predict_operation(schemas)},
            "/invocations": {"post": invocations_operation(schemas)},
            **get_paths(),
        },
        "components": {"schemas": {"Prediction": schemas.prediction, "Error": error_schema()}},
    }
