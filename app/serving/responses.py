"""JSON answers of the API: one serializer (orjson) and one error shape for every failure."""

from __future__ import annotations

from typing import Any

import orjson
from flask import Response


def json_response(body: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status=status, mimetype="application/json")


def error_response(status: int, reason: str, message: str) -> Response:
    # A message may echo client text, and JSON parsers accept lone surrogates ("\ud800") that
    # UTF-8, hence orjson, cannot encode: those are written out as escapes instead.
    message = message.encode("utf-8", "backslashreplace").decode("utf-8")
    return json_response({"error": {"status": status, "reason": reason, "message": message}}, status)
