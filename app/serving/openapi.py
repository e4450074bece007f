"""The OpenAPI 3 description of every endpoint, built from the model's feature and class names."""

from __future__ import annotations

from dataclasses import dataclass
from importlib.metadata import version
from typing import Any

from app.serving.payloads import REASONS

Schema = dict[str, Any]

# Error reasons the app adds to the payload parser's: routing, readiness and the last resort.
APP_REASONS = ("not_found", "method_not_allowed", "not_ready", "internal_error")
ERROR_TEXT = {
    400: "Body is not valid JSON",
    404: "Unknown route",
    405: "Method not allowed",
    413: "Body larger than the size limit",
    415: "Content-Type is not application/json",
    422: "Valid JSON that is not a valid request (the message names the field)",
    503: "No model loaded yet",
}
REQUEST_ERRORS = (400, 413, 415, 422, 503)


def _json(schema: Schema, description: str) -> Schema:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*statuses: int) -> Schema:
    return {str(s): _json({"$ref": "#/components/schemas/Error"}, ERROR_TEXT[s]) for s in statuses}


def _request_body(schema: Schema) -> Schema:
    return {"required": True, "content": {"application/json": {"schema": schema}}}


def _only(key: str, schema: Schema) -> Schema:
    """An object with exactly this one field."""
    return {"type": "object", "properties": {key: schema}, "required": [key], "additionalProperties": False}


@dataclass(frozen=True)
class Schemas:
    """The building blocks that depend on the model: rows, records, class labels, predictions."""

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
        record = {
            "type": "object",
            "properties": {name: {"type": "number"} for name in feature_names},
            "required": list(feature_names),
            "additionalProperties": False,
        }
        label = {"type": "string", "enum": list(class_names)}
        probabilities = {"type": "object", "properties": {c: {"type": "number"} for c in class_names}}
        return cls(
            row=row,
            record=record,
            rows={"type": "array", "items": row, "minItems": 1, "maxItems": max_rows},
            records={"type": "array", "items": record, "minItems": 1, "maxItems": max_rows},
            label=label,
            prediction={
                "type": "object",
                "properties": {"prediction": label, "probabilities": probabilities},
                "required": ["prediction", "probabilities"],
            },
        )


MODEL_INFO = {"type": "object", "properties": {"name": {"type": "string"}, "version": {"type": "string"}}}


def predict_operation(schemas: Schemas) -> Schema:
    one_row = {"allOf": [{"$ref": "#/components/schemas/Prediction"}], "properties": {"model": MODEL_INFO}}
    batch = {
        "type": "object",
        "properties": {"predictions": {"type": "array", "items": schemas.prediction}, "model": MODEL_INFO},
    }
    return {
        "summary": "Predict one row (features) or a batch (instances)",
        "requestBody": _request_body(
            {"oneOf": [_only("features", schemas.row), _only("instances", schemas.rows)]}
        ),
        "responses": {
            "200": _json({"oneOf": [one_row, batch]}, "The class (and probabilities) for each row"),
            **_errors(*REQUEST_ERRORS),
        },
    }


def invocations_operation(schemas: Schemas) -> Schema:
    rows, records = schemas.rows, schemas.records
    dataframe_split = {
        "type": "object",
        "properties": {
            "columns": {"type": "array", "items": {"type": "string"}},
            "data": rows,
            "index": {"type": "array"},
        },
        "required": ["data"],
    }
    body = {
        "type": "object",
        "description": "One of the four input forms, plus optional params.",
        "properties": {
            "dataframe_split": dataframe_split,
            "dataframe_records": records,
            "instances": {"oneOf": [rows, records]},
            "inputs": {"oneOf": [rows, records, {"type": "object"}]},
            "params": {"type": "object"},
        },
    }
    predictions = {"type": "object", "properties": {"predictions": {"type": "array", "items": schemas.label}}}
    return {
        "summary": "MLflow scoring-server protocol",
        "requestBody": _request_body(body),
        "responses": {"200": _json(predictions, "One class per row"), **_errors(*REQUEST_ERRORS)},
    }


def get_paths() -> Schema:
    """The GET endpoints: their answers do not depend on the model."""
    plain = {"description": "OK", "content": {"text/plain": {"schema": {"type": "string"}}}}
    html = {"description": "HTML", "content": {"text/html": {}}}
    return {
        "/health": {"get": {"summary": "Liveness", "responses": {"200": _json({"type": "object"}, "Alive")}}},
        "/ready": {
            "get": {
                "summary": "Readiness: 200 once a verified model is loaded",
                "responses": {"200": _json({"type": "object"}, "Ready"), **_errors(503)},
            }
        },
        "/metrics": {"get": {"summary": "Prometheus metrics", "responses": {"200": plain}}},
        "/openapi.json": {
            "get": {"summary": "This document", "responses": {"200": _json({"type": "object"}, "OpenAPI")}}
        },
        "/": {"get": {"summary": "A page with a form to try predictions", "responses": {"200": html}}},
    }


def error_schema() -> Schema:
    error = {
        "type": "object",
        "properties": {
            "status": {"type": "integer"},
            "reason": {"type": "string", "enum": [*REASONS, *APP_REASONS]},
            "message": {"type": "string"},
        },
        "required": ["status", "reason", "message"],
    }
    return {"type": "object", "properties": {"error": error}, "required": ["error"]}


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
