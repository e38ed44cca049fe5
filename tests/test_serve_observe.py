"""What the server says about itself: Prometheus metrics at /metrics and one JSON access-log
line per request."""

from __future__ import annotations

import json
import logging

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from serve_fixtures import tiny_exports

from dlnd.serve.app import create_app
from dlnd.serve.observe import ACCESS_LOGGER

PREDICT = "/v1/models/tiny-digits/predict"
PIXELS = {"pixels": [[0.0] * 28] * 28}


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    app = create_app([tiny_exports(tmp_path_factory)["digits"]], max_batch=4, max_wait_ms=1)
    with TestClient(app) as client:
        yield client


def samples(client) -> dict[tuple[str, tuple], float]:
    """Every sample of /metrics: (name, sorted labels) -> value."""
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=")
    found = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def requests_counted(found, status: str, route: str = "/v1/models/{name}/predict") -> float:
    labels = (("method", "POST"), ("route", route), ("status", status))
    return found.get(("dlnd_http_requests_total", labels), 0.0)


def test_requests_latencies_batches_and_errors_are_counted(client):
    before = samples(client)
    for _ in range(3):
        assert client.post(PREDICT, json=PIXELS).status_code == 200
    assert client.post(PREDICT, json={"pixels": [[2.0] * 28] * 28}).status_code == 422
    after = samples(client)
    assert requests_counted(after, "200") - requests_counted(before, "200") == 3
    assert requests_counted(after, "422") - requests_counted(before, "422") == 1
    latency = (
        "dlnd_http_request_duration_seconds_count",
        (("method", "POST"), ("route", "/v1/models/{name}/predict")),
    )
    assert after[latency] - before.get(latency, 0) == 4
    batches = ("dlnd_batch_size_count", (("model", "tiny-digits"),))
    assert after[batches] - before.get(batches, 0) == 3  # one forward pass per request here
    assert after[("process_resident_memory_bytes", ())] > 10e6
    assert after[("dlnd_http_requests_in_flight", ())] == 1  # the /metrics request itself


def test_client_paths_cannot_grow_the_number_of_series(client):
    for i in range(20):
        assert client.get(f"/no/such/path/{i}").status_code == 404
    found = samples(client)
    routes = {dict(labels)["route"] for name, labels in found if name == "dlnd_http_requests_total"}
    assert "other" in routes
    assert not any(route.startswith("/no/") for route in routes)


def test_one_json_access_log_line_per_request(client, caplog):
    with caplog.at_level(logging.INFO, logger=ACCESS_LOGGER):
        client.post(PREDICT, json=PIXELS)
        client.get("/v1/models/nope%1B%5B31m")  # an escape sequence, percent-encoded
        client.get("/static/app.js")
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == ACCESS_LOGGER]
    assert [(line["method"], line["status"]) for line in lines] == [
        ("POST", 200),
        ("GET", 404),
        ("GET", 200),
    ]
    assert lines[0]["route"] == "/v1/models/{name}/predict" and lines[0]["bytes_in"] > 1000
    assert lines[0]["bytes_out"] > 0 and lines[0]["duration_ms"] > 0
    assert lines[1]["path"] == "/v1/models/nope\x1b[31m"  # kept, but escaped in the line
    assert "\x1b" not in caplog.records[1].getMessage()
    assert lines[2]["route"] == "/static"
    assert set(lines[0]) == {
        "time", "client", "method", "path", "route", "status", "duration_ms", "bytes_in",
        "bytes_out",
    }  # fmt: skip


def test_the_access_log_can_be_turned_off(tmp_path_factory, caplog):
    app = create_app([tiny_exports(tmp_path_factory)["digits"]], access_log=False)
    with TestClient(app) as quiet, caplog.at_level(logging.INFO, logger=ACCESS_LOGGER):
        quiet.get("/healthz")
    assert not [r for r in caplog.records if r.name == ACCESS_LOGGER]


def test_metrics_need_the_api_key_when_there_is_one(tmp_path_factory):
    app = create_app([tiny_exports(tmp_path_factory)["digits"]], api_key="k")
    with TestClient(app) as keyed:
        assert keyed.get("/metrics").status_code == 401
        assert keyed.get("/metrics", headers={"x-api-key": "k"}).status_code == 200
