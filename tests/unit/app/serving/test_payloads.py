"""Request parsing: every accepted form and every rejection reason, without a server."""

from __future__ import annotations

import json

import pytest

from app.model.iris import FEATURE_NAMES
from app.serving.payloads import InvalidRequest, parse_invocations, parse_json_body, parse_predict

ROW = [5.1, 3.5, 1.4, 0.2]


def body(obj: object) -> bytes:
    return json.dumps(obj).encode()


def test_features_form_gives_one_row_of_floats() -> None:
    parsed = parse_predict({"features": [5, 3.5, 1.4, 0]}, 4, 10)
    assert not parsed.batch
    assert parsed.rows == [[5.0, 3.5, 1.4, 0.0]]
    assert all(type(value) is float for value in parsed.rows[0])


def test_instances_form_gives_a_batch() -> None:
    parsed = parse_predict({"instances": [ROW, [6.7, 3.0, 5.2, 2.3]]}, 4, 10)
    assert parsed.batch
    assert parsed.rows == [ROW, [6.7, 3.0, 5.2, 2.3]]


@pytest.mark.parametrize(
    ("payload", "status", "reason", "fragment"),
    [
        ({}, 422, "missing_field", "features"),
        ({"features": ROW, "extra": 1}, 422, "unexpected_field", "extra"),
        ({"features": ROW, "instances": [ROW]}, 422, "unexpected_field", "only one"),
        ([ROW], 422, "wrong_type", "object"),
        ({"features": "5.1,3.5"}, 422, "wrong_type", "features"),
        ({"features": [1, 2, 3]}, 422, "wrong_feature_count", "got 3"),
        ({"features": [1, 2, 3, 4, 5]}, 422, "wrong_feature_count", "got 5"),
        ({"features": [1, "2", 3, 4]}, 422, "not_a_number", "features[1]"),
        ({"features": [1, None, 3, 4]}, 422, "not_a_number", "features[1]"),
        ({"features": [True, 2, 3, 4]}, 422, "not_a_number", "features[0]"),
        ({"instances": []}, 422, "empty_batch", "instances"),
        ({"instances": [ROW] * 11}, 422, "too_many_rows", "limit is 10"),
        ({"instances": [ROW, [1, 2]]}, 422, "wrong_feature_count", "instances[1]"),
    ],
)
def test_predict_rejections_name_the_problem(
    payload: object, status: int, reason: str, fragment: str
) -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_predict(payload, 4, 10)
    assert (caught.value.status, caught.value.reason) == (status, reason)
    assert fragment in caught.value.message


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_json_literals_are_rejected(literal: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_json_body(f'{{"features": [1, 2, 3, {literal}]}}'.encode(), "application/json")
    assert caught.value.reason == "non_finite"


def test_overflowing_number_is_non_finite() -> None:
    payload = parse_json_body(b'{"features": [1e400, 2, 3, 4]}', "application/json")
    with pytest.raises(InvalidRequest) as caught:
        parse_predict(payload, 4, 10)
    assert caught.value.reason == "non_finite"


@pytest.mark.parametrize(
    ("raw", "content_type", "status", "reason"),
    [
        (b"{not json", "application/json", 400, "invalid_json"),
        (b"", "application/json", 400, "invalid_json"),
        (b"\xff\xfe", "application/json", 400, "invalid_json"),
        (body({"features": ROW}), "text/plain", 415, "unsupported_media_type"),
        (body({"features": ROW}), None, 415, "unsupported_media_type"),
    ],
)
def test_body_level_rejections(raw: bytes, content_type: str | None, status: int, reason: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_json_body(raw, content_type)
    assert (caught.value.status, caught.value.reason) == (status, reason)


def test_content_type_parameters_are_accepted() -> None:
    assert parse_json_body(body({"a": 1}), "application/json; charset=utf-8") == {"a": 1}


@pytest.mark.parametrize(
    "payload",
    [
        {"dataframe_split": {"columns": list(FEATURE_NAMES), "data": [ROW]}},
        {"dataframe_split": {"columns": list(reversed(FEATURE_NAMES)), "data": [list(reversed(ROW))]}},
        {"dataframe_split": {"data": [ROW]}},
        {"dataframe_records": [dict(zip(FEATURE_NAMES, ROW, strict=True))]},
        {"instances": [ROW]},
        {"instances": [dict(zip(FEATURE_NAMES, ROW, strict=True))]},
        {"inputs": [ROW]},
        {"inputs": {name: [value] for name, value in zip(FEATURE_NAMES, ROW, strict=True)}},
        {"inputs": [ROW], "params": {}},
    ],
)
def test_every_mlflow_input_form_gives_the_same_row(payload: object) -> None:
    rows = parse_invocations(payload, FEATURE_NAMES, 10)
    assert rows.tolist() == [pytest.approx(ROW)]


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ({}, "missing_field"),
        ({"inputs": [ROW], "instances": [ROW]}, "unexpected_field"),
        ({"inputs": [ROW], "bogus": 1}, "unexpected_field"),
        ({"dataframe_split": {"columns": ["a", "b", "c", "d"], "data": [ROW]}}, "missing_field"),
        ({"dataframe_split": {"columns": [*FEATURE_NAMES, "x"], "data": [[*ROW, 1]]}}, "unexpected_field"),
        ({"dataframe_split": {"columns": list(FEATURE_NAMES), "data": [ROW[:3]]}}, "wrong_feature_count"),
        ({"dataframe_split": {"columns": list(FEATURE_NAMES)}}, "missing_field"),
        ({"dataframe_records": []}, "empty_batch"),
        ({"dataframe_records": [{"sepal_length": 1}]}, "missing_field"),
        ({"inputs": {"sepal_length": [1, 2], "sepal_width": [1]}}, "wrong_type"),
        ({"instances": [ROW] * 11}, "too_many_rows"),
    ],
)
def test_invocations_rejections(payload: object, reason: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_invocations(payload, FEATURE_NAMES, 10)
    assert caught.value.reason == reason
    assert caught.value.status == 422


def test_unknown_reason_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="unknown rejection reason"):
        InvalidRequest(422, "made_up", "x")


@pytest.mark.parametrize(
    "raw",
    [b"[" * 100_000, b'{"features": ' + b"[" * 5000 + b"]" * 5000 + b"}", b"[" * 1100 + b"]" * 1100],
    ids=["unterminated", "in features", "deeper than the parser's limit"],
)
def test_deep_nesting_is_invalid_json(raw: bytes) -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_json_body(raw, "application/json")
    assert (caught.value.status, caught.value.reason) == (400, "invalid_json")


@pytest.mark.parametrize("digits", [310, 5000])
def test_integer_beyond_float_range_is_non_finite(digits: int) -> None:
    payload = parse_json_body(b'{"features": [1' + b"0" * digits + b", 2, 3, 4]}", "application/json")
    with pytest.raises(InvalidRequest) as caught:
        parse_predict(payload, 4, 10)
    assert (caught.value.status, caught.value.reason) == (422, "non_finite")


def test_unknown_keys_are_echoed_escaped_and_bounded() -> None:
    payload = parse_json_body(
        b'{"features": [1, 2, 3, 4], "\\ud800": 0, "' + b"x" * 5000 + b'": 1}', "application/json"
    )
    with pytest.raises(InvalidRequest) as caught:
        parse_predict(payload, 4, 10)
    assert caught.value.reason == "unexpected_field"
    assert "\\ud800" in caught.value.message
    caught.value.message.encode("utf-8")  # encodable: no lone surrogate left
    assert len(caught.value.message) < 200


def test_a_deeply_nested_value_is_described_not_dumped() -> None:
    payload = parse_json_body(
        b'{"features": [1, 2, 3, ' + b"[" * 1000 + b"]" * 1000 + b"]}", "application/json"
    )
    with pytest.raises(InvalidRequest) as caught:
        parse_predict(payload, 4, 10)
    assert caught.value.reason == "not_a_number"
    assert "got a list" in caught.value.message


@pytest.mark.parametrize(
    "payload",
    [
        {"inputs": [ROW], "params": "x"},
        {"inputs": [ROW], "params": None},
        {"dataframe_split": {"data": [ROW], "index": 5}},
        {"dataframe_split": {"data": [ROW], "index": [True]}},
        {"dataframe_split": {"data": [ROW], "columns": None}},
        {"dataframe_split": {"data": [{"sepal_length": 1}], "columns": list(FEATURE_NAMES)}},
    ],
)
def test_invocations_fields_have_the_documented_types(payload: object) -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_invocations(payload, FEATURE_NAMES, 10)
    assert (caught.value.status, caught.value.reason) == (422, "wrong_type")


def test_index_labels_are_accepted_and_ignored() -> None:
    payload = {"dataframe_split": {"data": [ROW], "index": [7], "columns": list(FEATURE_NAMES)}, "params": {}}
    assert parse_invocations(payload, FEATURE_NAMES, 10).tolist() == [pytest.approx(ROW)]
