"""Tabular models behind the API: the NumPy networks of bike-sharing and admissions (and any
MLP) exported to ONNX with a card that describes every feature, and served with feature
checks that name what is wrong."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys

import httpx
import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient
from serve_fixtures import tabular_exports, tabular_runs

from dlnd.cli import main
from dlnd.errors import UserError
from dlnd.scratch.features import Feature, Target, encode, parse_rows
from dlnd.scratch.mlp import MLP
from dlnd.serve.app import create_app
from dlnd.serve.card import CARD_FILE
from dlnd.serve.runtime import OnnxModel
from dlnd.serve.tabular_export import (
    export_mlp,
    export_numpy_run,
    network_of,
    read_run,
    sample_rows,
)

BIKE = "/v1/models/bike-sharing/predict"
ADMISSIONS = "/v1/models/admissions/predict"
AN_HOUR = {
    "yr": "2012",
    "holiday": False,
    "temp": 24.5,
    "hum": 55,
    "windspeed": 12.0,
    "season": "summer",
    "weathersit": "clear",
    "mnth": "July",
    "hr": 17,
    "weekday": "Tuesday",
}
AN_APPLICANT = {"gre": 660, "gpa": 3.7, "rank": 2}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    return tabular_runs(tmp_path_factory)


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    return tabular_exports(tmp_path_factory)


@pytest.fixture(scope="module")
def app(exports):
    return create_app([exports["bike"], exports["admissions"]], max_batch=8, max_wait_ms=1)


@pytest.fixture(scope="module")
def client(app):
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


def card_of(folder) -> dict:
    return json.loads((folder / CARD_FILE).read_text(encoding="utf-8"))


def torch_reference(arrays: dict[str, np.ndarray], info: dict, x: np.ndarray) -> np.ndarray:
    """The network's forward pass rebuilt with torch.nn layers (an independent reference):
    ``x: (N, n_in)`` -> the raw outputs ``(N, n_out)`` before any output activation."""
    sizes = info["sizes"]
    hidden = {"sigmoid": torch.nn.Sigmoid, "relu": torch.nn.ReLU, "tanh": torch.nn.Tanh}
    layers = []
    for i, (fan_in, fan_out) in enumerate(zip(sizes, sizes[1:]), start=1):
        linear = torch.nn.Linear(fan_in, fan_out).double()
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(arrays[f"W{i}"].T.astype(np.float64)))
            linear.bias.copy_(torch.from_numpy(arrays[f"b{i}"].astype(np.float64)))
        layers.append(linear)
        if i < len(sizes) - 1:
            layers.append(hidden[info["activation"]]())
    with torch.no_grad():
        return torch.nn.Sequential(*layers)(torch.from_numpy(x.astype(np.float64))).numpy()


def test_the_bike_export_equals_a_pytorch_forward_pass_in_bikes_per_hour(runs, exports):
    arrays, meta = read_run(runs["bike"])
    card = card_of(exports["bike"])
    features = [Feature.from_json(f) for f in card["features"]]
    x = encode(features, sample_rows(features, 200, seed=5))
    target = meta["info"]["target"]
    expected = torch_reference(arrays, meta["info"], x) * target["scale"] + target["shift"]
    exported = OnnxModel(exports["bike"] / card["file"])(x)
    np.testing.assert_allclose(exported, expected, rtol=1e-4, atol=1e-3)
    assert exported.std() > 1.0  # real units (bikes), not the standardised scale


def test_the_admissions_export_gives_probabilities_of_both_classes(runs, exports):
    arrays, meta = read_run(runs["admissions"])
    card = card_of(exports["admissions"])
    features = [Feature.from_json(f) for f in card["features"]]
    x = encode(features, sample_rows(features, 100, seed=6))
    admitted = torch.sigmoid(torch.from_numpy(torch_reference(arrays, meta["info"], x)))[:, 0]
    probabilities = OnnxModel(exports["admissions"] / card["file"])(x)
    np.testing.assert_allclose(probabilities[:, 1], admitted.numpy(), atol=1e-5)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-6)


def test_the_card_describes_each_feature_and_the_output(exports):
    card = card_of(exports["bike"])
    assert card["task"] == "tabular-regression" and card["format"] == "onnx"
    by_name = {f["name"]: f for f in card["features"]}
    assert list(by_name) == [
        "yr", "holiday", "temp", "hum", "windspeed", "season", "weathersit", "mnth", "hr",
        "weekday",
    ]  # fmt: skip
    assert (by_name["hr"]["kind"], by_name["hr"]["minimum"], by_name["hr"]["maximum"]) == (
        "integer",
        0,
        23,
    )
    assert by_name["season"]["categories"] == ["spring", "summer", "fall", "winter"]
    assert by_name["weathersit"]["codes"] == [1, 2, 3, 4]
    assert by_name["temp"]["unit"] == "°C"
    assert card["target"]["unit"] == "bikes per hour" and card["target"]["scale"] > 1
    assert card["chart_over"] == "hr"
    assert len(card["input"]["columns"]) == 56
    assert card["verification"]["max_rel_diff_vs_numpy"] <= card["verification"]["tolerance"]
    admissions = card_of(exports["admissions"])
    assert admissions["task"] == "tabular-classification"
    assert admissions["target"]["classes"] == ["rejected", "admitted"]


def test_a_prediction_equals_the_numpy_network(runs, client):
    arrays, meta = read_run(runs["bike"])
    net = network_of(arrays, meta["info"])
    features = [Feature.from_json(f) for f in meta["info"]["features"]]
    x = encode(features, parse_rows(features, [AN_HOUR], batch=False))
    target = meta["info"]["target"]
    expected = float(net.forward(x)[0, 0]) * target["scale"] + target["shift"]
    answer = client.post(BIKE, json={"features": AN_HOUR}).json()
    assert answer["target"] == {"name": "cnt", "label": "bike rentals", "unit": "bikes per hour"}
    assert answer["predictions"][0]["value"] == pytest.approx(expected, rel=1e-5)


def test_rows_are_answered_in_order_like_single_requests(client):
    rows = [{**AN_HOUR, "hr": hour} for hour in range(24)]  # 24 rows, batches of at most 8
    batch = client.post(BIKE, json={"rows": rows}).json()["predictions"]
    singles = [client.post(BIKE, json={"features": row}).json()["predictions"][0] for row in rows]
    assert [p["value"] for p in batch] == pytest.approx([p["value"] for p in singles], rel=1e-6)
    assert len({round(p["value"]) for p in batch}) > 5  # the hour matters


def test_a_classifier_answers_with_the_probability_of_each_class(client):
    answer = client.post(ADMISSIONS, json={"rows": [AN_APPLICANT, {**AN_APPLICANT, "rank": 4}]})
    predictions = answer.json()["predictions"]
    for prediction in predictions:
        probabilities = prediction["probabilities"]
        assert set(probabilities) == {"rejected", "admitted"}
        assert sum(probabilities.values()) == pytest.approx(1.0)
        assert prediction["label"] == max(probabilities, key=probabilities.get)
        assert prediction["probability"] == probabilities[prediction["label"]]


def test_the_model_list_shows_features_and_target(client):
    models = {m["name"]: m for m in client.get("/v1/models").json()["models"]}
    assert models["bike-sharing"]["task"] == "tabular-regression"
    assert models["bike-sharing"]["chart_over"] == "hr"
    assert [f["name"] for f in models["admissions"]["features"]] == ["gre", "gpa", "rank"]


def without(row: dict, name: str) -> dict:
    return {k: v for k, v in row.items() if k != name}


TABULAR_ERRORS = {
    "missing": ({"features": without(AN_HOUR, "hr")}, "hr is missing; it takes a whole number"),
    "unknown": (
        {"features": {**AN_HOUR, "hour": 8}},
        '"hour" is not a feature of this model (did you mean "hr"?); its features are yr,',
    ),
    "mistyped": (
        {"features": {**AN_HOUR, "temp": "warm"}},
        'temp must be a number from 0 to 41 (°C), got "warm"',
    ),
    "out-of-range": ({"features": {**AN_HOUR, "hr": 24}}, "hr must be a whole number from 0 to 23"),
    "bad-category": (
        {"features": {**AN_HOUR, "season": "monsoon"}},
        'season must be one of "spring", "summer", "fall", "winter"',
    ),
    "row-index": (
        {"rows": [AN_HOUR, {**AN_HOUR, "hum": -5}]},
        "rows[1]: hum must be a number from 0 to 100 (%), got -5",
    ),
    "both": ({"features": AN_HOUR, "rows": [AN_HOUR]}, "exactly one of features or rows"),
    "neither": ({}, "exactly one of features or rows"),
    "no-rows": ({"rows": []}, "rows: List should have at least 1 item"),
    "too-many-rows": ({"rows": [AN_HOUR] * 1001}, "at most 1000"),
    "not-an-object": ({"features": [1, 2]}, "features: Input should be an object"),
    "nested-value": ({"features": {**AN_HOUR, "hr": [8]}}, "Invalid request"),
    "huge-integer": ({"features": {**AN_HOUR, "hr": 10**400}}, "hr must be a whole number"),
}


@pytest.mark.parametrize(("body", "message"), TABULAR_ERRORS.values(), ids=TABULAR_ERRORS.keys())
def test_bad_features_get_422_naming_the_feature_and_what_it_accepts(client, body, message):
    response = client.post(
        BIKE, content=json.dumps(body), headers={"content-type": "application/json"}
    )
    assert response.status_code == 422, response.text
    assert message in response.json()["detail"]


def test_a_tabular_model_takes_no_uploads(client):
    response = client.post(BIKE, files={"file": ("a.png", b"\x89PNG")})
    assert response.status_code == 415
    assert "send application/json" in response.json()["detail"]


def test_an_oversized_body_of_rows_is_refused_before_parsing(client):
    body = json.dumps({"rows": [[0] * 100] * 1000})  # 100,000 values
    response = client.post(BIKE, content=body, headers={"content-type": "application/json"})
    assert response.status_code == 422
    assert "more values than 1000 rows of this model's features" in response.json()["detail"]


def test_concurrent_rows_share_forward_passes_of_at_most_max_batch(app):
    batcher = app.state.registry.get("bike-sharing").batcher
    before = batcher.batches_run

    async def ask() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            bodies = [{"rows": [{**AN_HOUR, "hr": h}] * 5} for h in range(6)]
            return await asyncio.gather(*(http.post(BIKE, json=body) for body in bodies))

    responses = asyncio.run(ask())
    assert all(r.status_code == 200 for r in responses)
    assert all(len(r.json()["predictions"]) == 5 for r in responses)
    assert batcher.batches_run - before < 6 * 5


def test_serving_a_numpy_run_directly_needs_no_pytorch(runs):
    code = f"""
import sys
from fastapi.testclient import TestClient
from dlnd.serve.app import create_app
with TestClient(create_app([{str(runs["bike"])!r}, {str(runs["admissions"])!r}])) as client:
    bike = client.post("{BIKE}", json={{"features": {AN_HOUR!r}}})
    admit = client.post("{ADMISSIONS}", json={{"features": {AN_APPLICANT!r}}})
print(bike.status_code, admit.status_code, "torch" in sys.modules)
"""
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    assert result.stdout.split() == ["200", "200", "False"]
    assert not (runs["bike"] / "export-onnx").exists()  # nothing is written into the run


def test_dlnd_export_writes_the_numpy_network_and_its_card(runs, tmp_path, capsys):
    assert main(["export", str(runs["admissions"]), "--out", str(tmp_path / "out")]) == 0
    assert card_of(tmp_path / "out")["task"] == "tabular-classification"
    assert {p.name for p in (tmp_path / "out").iterdir()} == {CARD_FILE, "model.onnx"}


def test_a_numpy_network_exports_to_onnx_only(runs, tmp_path, capsys):
    out = tmp_path / "ts"
    assert main(["export", str(runs["bike"]), "--format", "torchscript", "--out", str(out)]) == 2
    assert "A NumPy network exports to ONNX only" in capsys.readouterr().err
    assert not out.exists()


def test_a_run_that_does_not_describe_its_features_is_a_user_error(tmp_path, capsys):
    from dlnd import run_recipe

    run = run_recipe("perceptron", quick=True, embedded=True, out=str(tmp_path / "runs"))
    assert main(["export", run["run_dir"], "--out", str(tmp_path / "out")]) == 2
    assert "does not describe its input features" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
    with pytest.raises(UserError, match="does not describe its input features"):
        create_app([run["run_dir"]])


def test_any_mlp_can_be_served_with_a_description_of_its_features(tmp_path):
    """A user's own softmax network on two measurements, three classes."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 2))
    y = (X[:, 0] > 0).astype(np.int64) + (X[:, 1] > 0.5)
    net = MLP([2, 8, 3], activation="tanh", output="softmax", seed=0)
    net.fit(X, y, epochs=30, lr=0.5)
    features = [
        Feature("width", "number", "petal width", "cm"),
        Feature("height", "number", "petal height", "cm", scale=2.0, shift=-1.0),
    ]
    target = Target("classification", "kind", "flower kind", classes=("a", "b", "c"))
    export_mlp(net, features, target, tmp_path / "mine", name="flowers")
    row = {"width": 0.3, "height": 0.9}
    expected = net.forward(np.array([[0.3, 0.9 * 2.0 - 1.0]]))[0]
    with TestClient(create_app([tmp_path / "mine"])) as client:
        answer = client.post("/v1/models/flowers/predict", json={"features": row}).json()
    probabilities = answer["predictions"][0]["probabilities"]
    np.testing.assert_allclose([probabilities[c] for c in "abc"], expected, atol=1e-5)


@pytest.mark.parametrize(
    ("sizes", "output", "target", "message"),
    [
        ([3, 1], "linear", Target("regression", "y"), "describe 2 input columns"),
        ([2, 1], "linear", Target("classification", "y", classes=("a", "b")), "cannot serve"),
        ([2, 3], "softmax", Target("classification", "y", classes=("a", "b")), "cannot serve"),
    ],
)
def test_a_description_that_does_not_fit_the_network_is_refused(
    tmp_path, sizes, output, target, message
):
    net = MLP(sizes, activation="relu", output=output)
    features = [Feature("a", "number"), Feature("b", "number")]
    with pytest.raises(UserError, match=message):
        export_mlp(net, features, target, tmp_path / "out", name="bad")
    assert not (tmp_path / "out").exists()


def test_a_damaged_run_description_is_a_user_error(runs, tmp_path):
    from safetensors.numpy import save_file

    arrays, meta = read_run(runs["bike"])
    meta["info"]["features"][3] = {"name": "hum", "kind": "percentage"}
    damaged = tmp_path / "run"
    damaged.mkdir()
    save_file(arrays, str(damaged / "model.safetensors"), metadata={"dlnd": json.dumps(meta)})
    with pytest.raises(UserError, match="damaged description.*kind must be one of"):
        export_numpy_run(damaged, tmp_path / "out")
    assert not (tmp_path / "out").exists()
