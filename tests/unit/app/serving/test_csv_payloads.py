"""CSV bodies for /invocations: what is accepted, every rejection, and the published grammar."""

from __future__ import annotations

import re

import pytest

from app.model.iris import FEATURE_NAMES
from app.serving.csv_payloads import csv_pattern, parse_csv_body
from app.serving.payloads import InvalidRequest

HEADER = ",".join(FEATURE_NAMES)


@pytest.mark.parametrize(
    "text",
    [
        f"{HEADER}\n5.1,3.5,1.4,0.2\n",
        f"{HEADER}\r\n5.1,3.5,1.4,0.2\r\n",
        f"{HEADER}\n5.1,3.5,1.4,0.2",
        f"{HEADER}\n51e-1,3.5,1.4,0.2\n\n\n",
    ],
)
def test_accepted_csv_matches_the_published_pattern(text: str) -> None:
    rows = parse_csv_body(text.encode(), "text/csv", FEATURE_NAMES, 10)
    assert rows.tolist() == [pytest.approx([5.1, 3.5, 1.4, 0.2])]
    assert re.search(csv_pattern(FEATURE_NAMES, 10), text)


@pytest.mark.parametrize(
    ("text", "status", "reason"),
    [
        ("", 400, "invalid_csv"),
        (f"{HEADER}\r5.1,3.5,1.4,0.2", 400, "invalid_csv"),
        (f"{HEADER}\n5.1,3.5,1.4,0.2\x00", 422, "not_a_number"),
        ("sepal_length,sepal_width,petal_length\n1,2,3\n", 422, "missing_field"),
        (f"{HEADER},colour\n1,2,3,4,5\n", 422, "unexpected_field"),
        ("sepal_width,sepal_length,petal_length,petal_width\n1,2,3,4\n", 422, "wrong_type"),
        (f"{HEADER}\n", 422, "empty_batch"),
        (f"{HEADER}\n1,2,3,4\n\n1,2,3,4\n", 422, "wrong_feature_count"),
        (f"{HEADER}\n1,2,3\n", 422, "wrong_feature_count"),
        (f"{HEADER}\n1,2,3,nan\n", 422, "not_a_number"),
        (f"{HEADER}\n1,2,3, 4\n", 422, "not_a_number"),
        (f"{HEADER}\n1,2,3,1e400\n", 422, "not_a_number"),
        (f'{HEADER}\n1,2,3,"4"\n', 422, "not_a_number"),
        (HEADER + "\n1,2,3,4" * 11, 422, "too_many_rows"),
    ],
)
def test_rejected_csv_names_the_problem_and_misses_the_pattern(text: str, status: int, reason: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_csv_body(text.encode(), "text/csv", FEATURE_NAMES, 10)
    assert (caught.value.status, caught.value.reason) == (status, reason)
    assert not re.fullmatch(csv_pattern(FEATURE_NAMES, 10).rstrip("$"), text)


def test_other_charsets_and_bad_utf8_are_refused() -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_csv_body(b"x", "text/csv; charset=latin-1", FEATURE_NAMES, 10)
    assert caught.value.status == 415
    with pytest.raises(InvalidRequest) as caught:
        parse_csv_body(b"\xff", "text/csv; charset=utf-8", FEATURE_NAMES, 10)
    assert caught.value.reason == "invalid_csv"
