"""Who may use the server: beyond this machine only with an API key (or --no-auth, said
out loud); the key checked on the API, not on the page and its assets."""

from __future__ import annotations

import argparse
import socket

import pytest
from fastapi.testclient import TestClient
from serve_fixtures import tiny_exports

from dlnd.cli import main
from dlnd.errors import UserError
from dlnd.serve.app import create_app
from dlnd.serve.commands import access_rules
from dlnd.serve.security import LOOPBACK_NAMES

KEY = "correct-horse-battery-staple"


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    app = create_app([tiny_exports(tmp_path_factory)["digits"]], api_key=KEY)
    with TestClient(app) as client:
        yield client


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_serving_beyond_this_machine_without_a_key_is_refused_before_binding(capsys, monkeypatch):
    monkeypatch.delenv("DLND_API_KEY", raising=False)
    port = free_port()
    assert main(["serve", "--host", "0.0.0.0", "--port", str(port)]) == 2
    err = capsys.readouterr().err
    assert "Listening on 0.0.0.0 lets other machines reach the models" in err
    assert "--no-auth" in err
    with socket.socket() as probe:  # nothing was bound
        probe.bind(("0.0.0.0", port))


def namespace(**values) -> argparse.Namespace:
    return argparse.Namespace(
        **{"host": "127.0.0.1", "api_key": None, "no_auth": False, "allow_host": [], **values}
    )


def test_access_rules(monkeypatch):
    monkeypatch.delenv("DLND_API_KEY", raising=False)
    assert access_rules(namespace()) == (None, list(LOOPBACK_NAMES))
    assert access_rules(namespace(allow_host=["box.lan"]))[1] == [*LOOPBACK_NAMES, "box.lan"]
    assert access_rules(namespace(host="0.0.0.0", no_auth=True)) == (None, None)
    assert access_rules(namespace(host="0.0.0.0", api_key="k")) == ("k", None)
    monkeypatch.setenv("DLND_API_KEY", "from-env")
    assert access_rules(namespace(host="::")) == ("from-env", None)
    with pytest.raises(UserError, match="--no-auth contradicts the API key"):
        access_rules(namespace(host="0.0.0.0", no_auth=True))


def test_the_api_needs_the_key(client):
    for headers in ({}, {"authorization": "Bearer wrong"}, {"x-api-key": KEY[:-1]}):
        response = client.get("/v1/models", headers=headers)
        assert response.status_code == 401
        assert "This server needs an API key" in response.json()["detail"]
        assert response.headers["www-authenticate"] == "Bearer"
    pixels = {"pixels": [[0.0] * 28] * 28}
    assert client.post("/v1/models/tiny-digits/predict", json=pixels).status_code == 401


def test_the_key_opens_the_api(client):
    pixels = {"pixels": [[0.0] * 28] * 28}
    for headers in ({"authorization": f"Bearer {KEY}"}, {"x-api-key": KEY}):
        assert client.get("/v1/models", headers=headers).status_code == 200
        answer = client.post("/v1/models/tiny-digits/predict", json=pixels, headers=headers)
        assert answer.status_code == 200


@pytest.mark.parametrize("path", ["/", "/healthz", "/docs", "/openapi.json", "/static/app.js"])
def test_the_page_and_the_api_description_need_no_key(client, path):
    assert client.get(path).status_code == 200
