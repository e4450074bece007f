"""Property-based tests: the served OpenAPI document and the real API agree, both ways.

Schemathesis reads GET /openapi.json from the real server (gunicorn, 2 sync workers) and sends a
few hundred generated requests per operation: valid ones must be accepted, invalid ones refused
with a 4xx, and every answer must match the document (status, content type, headers, body).
"""

from __future__ import annotations

from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import GenerationMode

from app.model.iris import CLASS_NAMES, FEATURE_NAMES
from app.serving.openapi import build_spec
from config.app_settings import ApiSettings
from tests.support.processes import Server

pytestmark = pytest.mark.integration

EXAMPLES_PER_OPERATION = 250


def spec_as_served() -> dict[str, Any]:
    """The document the API serves with its default settings and the Iris model.

    Built here because schemathesis generates its tests at collection time, before the server
    starts; the first test proves the server serves exactly this document.
    """
    return build_spec(FEATURE_NAMES, CLASS_NAMES, ApiSettings().max_batch_rows)


schema = schemathesis.openapi.from_dict(spec_as_served())
schema.config.generation.update(
    modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE],
    max_examples=EXAMPLES_PER_OPERATION,
    deterministic=True,
)


@schema.hook
def map_case(context: Any, case: Any) -> Any:
    """Trim a columnar `inputs` to its shortest column in valid requests.

    JSON Schema cannot say that the columns have equal length (the document says it in words),
    so a generated valid columnar body is made so before it is sent.
    """
    body = case.body
    positive = case.meta is not None and case.meta.generation.mode == GenerationMode.POSITIVE
    if positive and isinstance(body, dict) and isinstance(body.get("inputs"), dict):
        columns = body["inputs"]
        shortest = min(len(values) for values in columns.values())
        body["inputs"] = {name: values[:shortest] for name, values in columns.items()}
    return case


def test_the_server_serves_the_document_under_test(api_server: Server) -> None:
    served = requests.get(f"{api_server.base_url}/openapi.json", timeout=10).json()
    assert served == spec_as_served()


@schema.parametrize()
@settings(
    max_examples=EXAMPLES_PER_OPERATION,
    derandomize=True,
    database=None,  # derandomized: nothing to replay, and no .hypothesis/ left in the checkout
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
)
def test_every_answer_matches_the_document(case: Any, api_server: Server) -> None:
    case.call_and_validate(base_url=api_server.base_url)  # every check schemathesis has is on
