"""Fuzzing the API from its own OpenAPI description: whatever a client sends, no 5xx.

Schemathesis generates requests (valid and invalid) for every operation in
``/openapi.json``: JSON bodies, multipart uploads, odd model names, feature rows for the
tabular models (whose description lists every feature's type and range). The run is
bounded by a fixed number of examples per operation.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from serve_fixtures import tabular_exports, tiny_exports

from dlnd.serve.app import create_app

schemathesis = pytest.importorskip("schemathesis")
POSITIVE = schemathesis.GenerationMode.POSITIVE


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory):
    tabular = tabular_exports(tmp_path_factory)
    app = create_app(
        [tiny_exports(tmp_path_factory)["digits"], tabular["bike"], tabular["admissions"]],
        max_batch=8,
        max_wait_ms=1,
        max_body_bytes=100_000,
    )
    return schemathesis.openapi.from_asgi("/openapi.json", app)


def test_no_request_makes_the_server_fail(api_schema):
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert {op.path for op in operations} >= {"/v1/models/{name}/predict", "/healthz"}
    for operation in operations:
        # Only operations that take input can be sent input that breaks their schema.
        has_input = "{" in operation.path or operation.method.upper() == "POST"
        modes = list(schemathesis.GenerationMode) if has_input else [POSITIVE]
        for mode in modes:
            check_operation(operation, mode)


def check_operation(operation, mode) -> None:
    """Valid requests (POSITIVE) and requests that break the schema (NEGATIVE)."""

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=200, deadline=None, database=None, suppress_health_check=list(HealthCheck)
    )
    def answers_without_a_server_error(case) -> None:
        response = case.call()
        assert response.status_code < 500, (case.method, case.path, response.text[:300])

    answers_without_a_server_error()
