"""Parse and validate request bodies into a float32 matrix, or say exactly what is wrong.

Every rejection carries an HTTP status and a reason from a fixed vocabulary (a Prometheus label
value, so it must stay bounded) plus a message that names the field at fault.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
from numpy.typing import NDArray

REASONS = (
    "invalid_json",
    "invalid_csv",
    "unsupported_media_type",
    "body_too_large",
    "missing_field",
    "unexpected_field",
    "wrong_type",
    "wrong_feature_count",
    "not_a_number",
    "non_finite",
    "empty_batch",
    "too_many_rows",
)


@dataclass
class InvalidRequest(Exception):
    status: int
    reason: str
    message: str

    def __post_init__(self) -> None:
        if self.reason not in REASONS:
            raise ValueError(f"unknown rejection reason {self.reason!r}")
        super().__init__(self.message)


# Exact types: bool, an int subclass, is not a measurement. Integers from the parser fit in a
# float: orjson gives at most 64-bit ones and the fallback parser reads integers as floats.
_PLAIN_NUMBERS = (float, int)


def _reject_constant(name: str) -> float:
    # Python's json accepts NaN/Infinity literals, which are not JSON and not valid features.
    raise InvalidRequest(422, "non_finite", f"{name} is not a finite number")


def media_type(content_type: str | None) -> str:
    """`text/csv; charset=utf-8` -> `text/csv`."""
    return (content_type or "").split(";", 1)[0].strip().lower()


def parse_json_body(body: bytes, content_type: str | None) -> Any:
    mime = media_type(content_type)
    if mime != "application/json":
        raise InvalidRequest(
            415, "unsupported_media_type", f"Content-Type must be application/json, got {mime or 'none'!r}"
        )
    return parse_json(body)


def parse_json(body: bytes) -> Any:
    try:
        # orjson is several times faster than json and, like the JSON standard, refuses NaN and
        # Infinity literals; whatever it refuses is parsed again below only to name the problem.
        return orjson.loads(body)
    except orjson.JSONDecodeError as error:
        if "depth" in str(error):  # the fallback parser would recurse as deep, on the C stack
            raise InvalidRequest(400, "invalid_json", f"body nests too deeply: {error}") from None
    try:
        # Integers as floats: one with 310+ digits is out of float range (non_finite later), not
        # an OverflowError, and Python's cap on digits in int literals does not apply.
        return json.loads(body, parse_constant=_reject_constant, parse_int=float)
    except InvalidRequest:
        raise
    except RecursionError:
        raise InvalidRequest(400, "invalid_json", "body nests too deeply") from None
    except (ValueError, UnicodeDecodeError) as error:
        raise InvalidRequest(400, "invalid_json", f"body is not valid JSON: {error}") from None


def describe(value: Any) -> str:
    """A short, printable description of a JSON value for a message (never the whole value)."""
    if isinstance(value, str):
        return ascii(value[:40])
    if isinstance(value, list | dict):
        return "a list" if isinstance(value, list) else "an object"
    return "null" if value is None else str(value).lower()


def name_list(names: Sequence[Any]) -> str:
    """Field names from the client, escaped (they may hold lone surrogates) and bounded in length."""
    shown = ", ".join(ascii(str(name)[:40]) for name in names[:5])
    return shown if len(names) <= 5 else f"{shown} and {len(names) - 5} more"


def _number(value: Any, where: str) -> float:
    # bool is an int subclass in Python; true/false are not measurements.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidRequest(422, "not_a_number", f"{where} must be a number, got {describe(value)}")
    try:
        number = float(value)
    except OverflowError:  # an integer beyond the float range
        number = math.inf
    if not math.isfinite(number):
        raise InvalidRequest(422, "non_finite", f"{where} must be finite and within the float range")
    return number


def parse_row(row: Any, n_features: int, where: str) -> list[float]:
    if not isinstance(row, list):
        raise InvalidRequest(422, "wrong_type", f"{where} must be a list of {n_features} numbers")
    if len(row) != n_features:
        raise InvalidRequest(
            422, "wrong_feature_count", f"{where} must have {n_features} features, got {len(row)}"
        )
    # Fast path for the common case (plain finite numbers); the slow path names the bad value.
    if all(type(value) in _PLAIN_NUMBERS for value in row):
        values = [float(value) for value in row]
        if all(map(math.isfinite, values)):
            return values
    return [_number(value, f"{where}[{i}]") for i, value in enumerate(row)]


def parse_record(record: Any, feature_names: Sequence[str], where: str) -> list[float]:
    """A row given as {"feature_name": value, ...}."""
    if not isinstance(record, dict):
        raise InvalidRequest(422, "wrong_type", f"{where} must be an object keyed by feature name")
    missing = [name for name in feature_names if name not in record]
    if missing:
        raise InvalidRequest(422, "missing_field", f"{where} lacks feature(s) {name_list(missing)}")
    extra = sorted(set(record) - set(feature_names))
    if extra:
        raise InvalidRequest(422, "unexpected_field", f"{where} has unknown feature(s) {name_list(extra)}")
    return [_number(record[name], f"{where}.{name}") for name in feature_names]


def check_batch_size(rows: Any, max_rows: int, where: str) -> list[Any]:
    if not isinstance(rows, list):
        raise InvalidRequest(422, "wrong_type", f"{where} must be a list of rows")
    if not rows:
        raise InvalidRequest(422, "empty_batch", f"{where} is empty")
    if len(rows) > max_rows:
        raise InvalidRequest(
            422, "too_many_rows", f"{where} has {len(rows)} rows; the limit is {max_rows} per request"
        )
    return rows


def require_object(payload: Any, allowed: Sequence[str], optional: Sequence[str] = ()) -> str:
    """The payload must be an object with exactly one of `allowed` (plus `optional`); return it."""
    if not isinstance(payload, dict):
        raise InvalidRequest(422, "wrong_type", "body must be a JSON object")
    present = [key for key in allowed if key in payload]
    if not present:
        raise InvalidRequest(422, "missing_field", f"body needs one of: {', '.join(allowed)}")
    if len(present) > 1:
        raise InvalidRequest(422, "unexpected_field", f"body must have only one of {', '.join(present)}")
    extra = sorted(set(payload) - set(allowed) - set(optional))
    if extra:
        raise InvalidRequest(422, "unexpected_field", f"unknown field(s): {name_list(extra)}")
    return present[0]


def to_matrix(rows: list[list[float]]) -> NDArray[np.float32]:
    return np.asarray(rows, dtype=np.float32)


@dataclass(frozen=True)
class PredictRequest:
    """Validated rows of finite floats; `batch` tells the two request forms apart."""

    rows: list[list[float]]
    batch: bool


def parse_predict(payload: Any, n_features: int, max_rows: int) -> PredictRequest:
    """`{"features": [4 numbers]}` (the original contract) or `{"instances": [[...], ...]}`."""
    key = require_object(payload, ("features", "instances"))
    if key == "features":
        return PredictRequest([parse_row(payload["features"], n_features, "features")], False)
    rows = check_batch_size(payload["instances"], max_rows, "instances")
    return PredictRequest([parse_row(row, n_features, f"instances[{i}]") for i, row in enumerate(rows)], True)


def _rows_of_columns(columns: Any, feature_names: Sequence[str], where: str) -> list[dict[str, Any]]:
    """{"col": [v1, v2], ...} -> [{"col": v1}, {"col": v2}] (MLflow's columnar `inputs`)."""
    lengths = {len(v) if isinstance(v, list) else -1 for v in columns.values()}
    if -1 in lengths or len(lengths) > 1:
        raise InvalidRequest(422, "wrong_type", f"{where} columns must be lists of equal length")
    size = lengths.pop() if lengths else 0
    return [{name: columns[name][i] for name in columns} for i in range(size)]


def parse_invocations(payload: Any, feature_names: Sequence[str], max_rows: int) -> NDArray[np.float32]:
    """The MLflow scoring-server protocol: dataframe_split, dataframe_records, instances, inputs."""
    key = require_object(
        payload, ("dataframe_split", "dataframe_records", "instances", "inputs"), optional=("params",)
    )
    # Parameters are part of the protocol; this model takes none, but they must be an object.
    if "params" in payload and not isinstance(payload["params"], dict):
        raise InvalidRequest(422, "wrong_type", "params must be an object")
    body = payload[key]
    if key == "dataframe_split":
        return parse_dataframe_split(body, feature_names, max_rows)
    if key == "dataframe_records":
        rows = check_batch_size(body, max_rows, key)
        return to_matrix([parse_record(r, feature_names, f"{key}[{i}]") for i, r in enumerate(rows)])
    if isinstance(body, dict):  # columnar form: {"inputs": {"sepal_length": [...], ...}}
        rows = check_batch_size(_rows_of_columns(body, feature_names, key), max_rows, key)
        return to_matrix([parse_record(r, feature_names, f"{key}[{i}]") for i, r in enumerate(rows)])
    rows = check_batch_size(body, max_rows, key)
    if isinstance(rows[0], dict):
        return to_matrix([parse_record(r, feature_names, f"{key}[{i}]") for i, r in enumerate(rows)])
    return to_matrix([parse_row(row, len(feature_names), f"{key}[{i}]") for i, row in enumerate(rows)])


def _check_split_fields(body: Any) -> None:
    """dataframe_split is pandas' `split` orient: data, and optionally columns and index."""
    if not isinstance(body, dict):
        raise InvalidRequest(422, "wrong_type", "dataframe_split must be an object with columns and data")
    extra = sorted(set(body) - {"columns", "data", "index"})
    if extra:
        raise InvalidRequest(
            422, "unexpected_field", f"dataframe_split has unknown field(s) {name_list(extra)}"
        )
    if "data" not in body:
        raise InvalidRequest(422, "missing_field", "dataframe_split lacks data")
    columns = body.get("columns", [])
    if not isinstance(columns, list) or not all(isinstance(c, str) for c in columns):
        raise InvalidRequest(422, "wrong_type", "dataframe_split.columns must be a list of names")
    # Row labels are not used, but they must be labels: numbers or strings.
    index = body.get("index", [])
    if not isinstance(index, list) or any(
        isinstance(i, bool) or not isinstance(i, str | int | float) for i in index
    ):
        raise InvalidRequest(422, "wrong_type", "dataframe_split.index must be a list of numbers or strings")


def parse_dataframe_split(body: Any, feature_names: Sequence[str], max_rows: int) -> NDArray[np.float32]:
    _check_split_fields(body)
    rows = check_batch_size(body["data"], max_rows, "dataframe_split.data")
    if "columns" not in body:  # rows in the model's feature order
        n = len(feature_names)
        return to_matrix([parse_row(row, n, f"dataframe_split.data[{i}]") for i, row in enumerate(rows)])
    columns = body["columns"]
    records = []
    for i, row in enumerate(rows):
        where = f"dataframe_split.data[{i}]"
        if not isinstance(row, list):
            raise InvalidRequest(422, "wrong_type", f"{where} must be a list of values")
        if len(row) != len(columns):
            raise InvalidRequest(
                422, "wrong_feature_count", f"{where} must have {len(columns)} values (one per column)"
            )
        records.append(dict(zip(columns, row, strict=True)))
    return to_matrix(
        [parse_record(r, feature_names, f"dataframe_split.data[{i}]") for i, r in enumerate(records)]
    )
