"""Parse a `text/csv` body (what `mlflow models serve` takes on /invocations) into a float32 matrix.

Strict: UTF-8, a header row naming the model's features in the model's order, then one row of
plain decimal numbers per line; no quoting. The same grammar is published in the OpenAPI
document as a pattern (`csv_pattern`), so the document and the parser cannot drift apart.
"""

from __future__ import annotations

import csv
import math
import re
from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from app.serving.payloads import InvalidRequest, check_batch_size, name_list, to_matrix

CSV_MEDIA_TYPE = "text/csv"
# A decimal number whose magnitude always fits a float (at most 15+15 digits, a 2-digit exponent):
# every value the grammar admits is finite, so the published pattern promises nothing we refuse.
NUMBER = r"-?[0-9]{1,15}(?:\.[0-9]{1,15})?(?:[eE][-+]?[0-9]{1,2})?"
_NUMBER = re.compile(NUMBER)


def csv_pattern(feature_names: Sequence[str], max_rows: int) -> str:
    """The whole body as a regular expression: header, 1..max_rows rows, optional final newlines."""
    header = ",".join(re.escape(name) for name in feature_names)
    row = ",".join([NUMBER] * len(feature_names))
    return rf"^{header}(?:\r?\n{row}){{1,{max_rows}}}(?:\r?\n)*$"


def _check_charset(content_type: str | None) -> None:
    charset = re.search(r"charset=\"?([\w-]+)", content_type or "", re.IGNORECASE)
    if charset and charset.group(1).lower() != "utf-8":
        raise InvalidRequest(415, "unsupported_media_type", "text/csv bodies must be UTF-8")


def _check_header(header: list[str], feature_names: Sequence[str]) -> None:
    missing = [name for name in feature_names if name not in header]
    if missing:
        raise InvalidRequest(422, "missing_field", f"CSV header lacks column(s) {name_list(missing)}")
    extra = [name for name in header if name not in feature_names]
    if extra:
        raise InvalidRequest(422, "unexpected_field", f"CSV header has unknown column(s) {name_list(extra)}")
    if header != list(feature_names):
        raise InvalidRequest(
            422, "wrong_type", f"CSV header must list the columns in this order: {','.join(feature_names)}"
        )


def _value(text: str, where: str) -> float:
    if not _NUMBER.fullmatch(text):
        raise InvalidRequest(422, "not_a_number", f"{where} must be a decimal number, got {text[:40]!a}")
    number = float(text)
    if not math.isfinite(number):  # unreachable under the grammar above; kept as the last guard
        raise InvalidRequest(422, "non_finite", f"{where} must be finite")
    return number


def _row(fields: list[str], n_features: int, where: str) -> list[float]:
    if len(fields) != n_features:
        raise InvalidRequest(
            422, "wrong_feature_count", f"{where} must have {n_features} values, got {len(fields)}"
        )
    return [_value(text, f"{where}[{i}]") for i, text in enumerate(fields)]


def parse_csv_body(
    body: bytes, content_type: str | None, feature_names: Sequence[str], max_rows: int
) -> NDArray[np.float32]:
    _check_charset(content_type)
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as error:
        raise InvalidRequest(400, "invalid_csv", f"body is not UTF-8: {error}") from None
    # A line ends in \n or \r\n; blank lines at the end are ignored, anywhere else they are rows.
    text = text.replace("\r\n", "\n")
    if "\r" in text:  # the csv module would take a lone one as a line break; the grammar does not
        raise InvalidRequest(400, "invalid_csv", "a line ends in \\r without \\n")
    lines = text.rstrip("\n").split("\n")
    try:
        table = list(csv.reader(lines, quoting=csv.QUOTE_NONE, strict=True))
    except csv.Error as error:
        raise InvalidRequest(400, "invalid_csv", f"body is not valid CSV: {error}") from None
    if not table or not table[0]:
        raise InvalidRequest(400, "invalid_csv", "body needs a header row naming the columns")
    _check_header(table[0], feature_names)
    rows = check_batch_size(table[1:], max_rows, "CSV rows")
    n = len(feature_names)
    return to_matrix([_row(fields, n, f"row {i + 1}") for i, fields in enumerate(rows)])
