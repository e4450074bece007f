"""The OpenAPI 3 description of every endpoint, built from the model's feature and class names."""

from __future__ import annotations

from typing import Any

from app.serving.payloads import REASONS


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*statuses: int) -> dict[str, Any]:
    text = {
        400: "Body is not valid JSON",
        404: "Unknown route",
        405: "Method not allowed",
        413: "Body larger than the size limit",
        415: "Content-Type is not application/json",
        422: "Valid JSON that is not a valid request (the message names the field)",
        503: "No model loaded yet",
    }
    return {str(s): _json({"$ref": "#/components/schemas/Error"}, text[s]) for s in statuses}


def build_spec(feature_names: tuple[str, ...], class_names: tuple[str, ...], max_rows: int) -> dict[str, Any]:
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
    rows = {"type": "array", "items": row, "minItems": 1, "maxItems": max_rows}
    records = {"type": "array", "items": record, "minItems": 1, "maxItems": max_rows}
    label = {"type": "string", "enum": list(class_names)}
    probabilities = {"type": "object", "properties": {c: {"type": "number"} for c in class_names}}
    model_info = {
        "type": "object",
        "properties": {"name": {"type": "string"}, "version": {"type": "string"}},
    }
    one = {
        "type": "object",
        "properties": {"prediction": label, "probabilities": probabilities},
        "required": ["prediction", "probabilities"],
    }
    plain = {"description": "OK", "content": {"text/plain": {"schema": {"type": "string"}}}}
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "mlops-platform prediction API",
            "version": "0.1.0",
            "description": "Iris classifier served from its ONNX fast form.",
        },
        "paths": {
            "/predict": {
                "post": {
                    "summary": "Predict one row (features) or a batch (instances)",
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {
                                    "oneOf": [
                                        {
                                            "type": "object",
                                            "properties": {"features": row},
                                            "required": ["features"],
                                            "additionalProperties": False,
                                        },
                                        {
                                            "type": "object",
                                            "properties": {"instances": rows},
                                            "required": ["instances"],
                                            "additionalProperties": False,
                                        },
                                    ]
                                }
                            }
                        },
                    },
                    "responses": {
                        "200": _json(
                            {
                                "oneOf": [
                                    {
                                        "allOf": [{"$ref": "#/components/schemas/Prediction"}],
                                        "properties": {"model": model_info},
                                    },
                                    {
                                        "type": "object",
                                        "properties": {
                                            "predictions": {"type": "array", "items": one},
                                            "model": model_info,
                                        },
                                    },
                                ]
                            },
                            "The class (and probabilities) for each row",
                        ),
                        **_errors(400, 413, 415, 422, 503),
                    },
                }
            },
            "/invocations": {
                "post": {
                    "summary": "MLflow scoring-server protocol",
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "description": "One of the four input forms, plus optional params.",
                                    "properties": {
                                        "dataframe_split": {
                                            "type": "object",
                                            "properties": {
                                                "columns": {"type": "array", "items": {"type": "string"}},
                                                "data": rows,
                                                "index": {"type": "array"},
                                            },
                                            "required": ["data"],
                                        },
                                        "dataframe_records": records,
                                        "instances": {"oneOf": [rows, records]},
                                        "inputs": {"oneOf": [rows, records, {"type": "object"}]},
                                        "params": {"type": "object"},
                                    },
                                }
                            }
                        },
                    },
                    "responses": {
                        "200": _json(
                            {
                                "type": "object",
                                "properties": {"predictions": {"type": "array", "items": label}},
                            },
                            "One class per row",
                        ),
                        **_errors(400, 413, 415, 422, 503),
                    },
                }
            },
            "/health": {
                "get": {"summary": "Liveness", "responses": {"200": _json({"type": "object"}, "Alive")}}
            },
            "/ready": {
                "get": {
                    "summary": "Readiness: 200 once a verified model is loaded",
                    "responses": {"200": _json({"type": "object"}, "Ready"), **_errors(503)},
                }
            },
            "/metrics": {"get": {"summary": "Prometheus metrics", "responses": {"200": plain}}},
            "/openapi.json": {
                "get": {
                    "summary": "This document",
                    "responses": {"200": _json({"type": "object"}, "OpenAPI")},
                }
            },
            "/": {
                "get": {
                    "summary": "A page with a form to try predictions",
                    "responses": {"200": {"description": "HTML", "content": {"text/html": {}}}},
                }
            },
        },
        "components": {
            "schemas": {
                "Prediction": one,
                "Error": {
                    "type": "object",
                    "properties": {
                        "error": {
                            "type": "object",
                            "properties": {
                                "status": {"type": "integer"},
                                "reason": {
                                    "type": "string",
                                    "enum": [
                                        *REASONS,
                                        "not_found",
                                        "method_not_allowed",
                                        "not_ready",
                                        "internal_error",
                                    ],
                                },
                                "message": {"type": "string"},
                            },
                            "required": ["status", "reason", "message"],
                        }
                    },
                    "required": ["error"],
                },
            }
        },
    }
