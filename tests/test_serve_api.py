"""The REST API through the ASGI test client: every endpoint and every error status."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import re

import httpx
import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient
from PIL import Image
from serve_fixtures import tiny_exports, tiny_runs

from dlnd.checkpoint import load_model
from dlnd.serve.app import STATIC, create_app
from dlnd.serve.classifier import ImagePredictResponse, softmax
from dlnd.vision.predict import image_to_tensor

PREDICT = "/v1/models/tiny-digits/predict"
COLOUR_PREDICT = "/v1/models/tiny-colour/predict"
MAX_BODY = 200_000


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    exports = tiny_exports(tmp_path_factory)
    return create_app(
        [exports["digits"], exports["colour"]], max_batch=16, max_wait_ms=5, max_body_bytes=MAX_BODY
    )


@pytest.fixture(scope="module")
def client(app):
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


@pytest.fixture(scope="module")
def digits_model(tmp_path_factory):
    return load_model(tiny_runs(tmp_path_factory)["digits"])[0]


def png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, "PNG")
    return buffer.getvalue()


def reference_probabilities(model: torch.nn.Module, x: np.ndarray) -> np.ndarray:
    """softmax of the PyTorch model's logits for one input ``x: (C, H, W)``."""
    with torch.no_grad():
        return torch.softmax(model(torch.from_numpy(x)[None]), dim=1)[0].numpy()


def as_vector(predictions: list[dict]) -> np.ndarray:
    vector = np.zeros(len(predictions), np.float32)
    for p in predictions:
        vector[p["index"]] = p["probability"]
    return vector


def test_healthz(client):
    assert client.get("/healthz").json() == {"status": "ok", "models": 2}


def test_models_are_listed_with_their_input_classes_and_metrics(client):
    models = {m["name"]: m for m in client.get("/v1/models").json()["models"]}
    assert set(models) == {"tiny-digits", "tiny-colour"}
    digits = models["tiny-digits"]
    assert digits["task"] == "image-classification"
    assert digits["classes"] == [str(d) for d in range(10)]
    assert (digits["input"]["channels"], digits["input"]["height"]) == (1, 28)
    assert digits["metrics"]["checkpoint"] == {"val_accuracy": 0.5}
    assert client.get("/v1/models/tiny-colour").json()["classes"] == ["cat", "dog", "ship"]


def test_pixel_predictions_equal_the_pytorch_model(client, digits_model):
    x = np.random.default_rng(0).random((28, 28)).astype(np.float32)
    answer = client.post(PREDICT, json={"pixels": x.tolist(), "top_k": 10}).json()
    ImagePredictResponse.model_validate(answer)  # the documented shape
    probabilities = [p["probability"] for p in answer["predictions"]]
    assert answer["model"] == "tiny-digits"
    assert probabilities == sorted(probabilities, reverse=True)
    expected = reference_probabilities(digits_model, x[None])
    np.testing.assert_allclose(as_vector(answer["predictions"]), expected, atol=1e-5)
    assert [p["label"] for p in answer["predictions"]] == [str(i) for i in np.argsort(-expected)]


def test_top_k_limits_the_answer(client):
    pixels = np.zeros((28, 28)).tolist()
    assert len(client.post(PREDICT, json={"pixels": pixels}).json()["predictions"]) == 5
    assert len(client.post(PREDICT, json={"pixels": pixels, "top_k": 2}).json()["predictions"]) == 2
    # More than the number of classes: every class, once.
    answer = client.post(
        COLOUR_PREDICT, json={"pixels": np.zeros((32, 32, 3)).tolist(), "top_k": 50}
    ).json()
    assert sorted(p["label"] for p in answer["predictions"]) == ["cat", "dog", "ship"]


def test_uploads_and_base64_images_give_the_pytorch_answer(client, digits_model, tmp_path_factory):
    image = np.random.default_rng(1).integers(0, 256, (40, 30), dtype=np.uint8)
    data = png(image)
    info = load_model(tiny_runs(tmp_path_factory)["digits"])[1]["info"]
    x = image_to_tensor(Image.fromarray(image), info)[0].numpy()
    expected = reference_probabilities(digits_model, x)
    upload = client.post(
        PREDICT, files={"file": ("digit.png", data, "image/png")}, data={"top_k": "10"}
    )
    assert upload.status_code == 200
    np.testing.assert_allclose(as_vector(upload.json()["predictions"]), expected, atol=1e-5)
    encoded = client.post(
        PREDICT, json={"image_base64": base64.b64encode(data).decode(), "top_k": 10}
    )
    assert encoded.json() == upload.json()


def test_a_colour_model_takes_an_upload(client):
    photo = np.random.default_rng(2).integers(0, 256, (64, 48, 3), dtype=np.uint8)
    answer = client.post(COLOUR_PREDICT, files={"file": ("photo.png", png(photo), "image/png")})
    assert answer.status_code == 200
    assert {p["label"] for p in answer.json()["predictions"]} == {"cat", "dog", "ship"}


GOOD_PIXELS = {"pixels": [[0.0] * 28] * 28}


def json_body(text: str) -> dict:
    return {"content": text.encode(), "headers": {"content-type": "application/json"}}


CLIENT_ERRORS = {
    "unknown-model": (404, "/v1/models/nope/predict", {"json": GOOD_PIXELS}, "No model named"),
    "unknown-model-info": (404, "/v1/models/nope", None, "tiny-digits, tiny-colour"),
    "path-as-model-name": (
        404,
        "/v1/models/..%2F..%2Fetc%2Fpasswd/predict",
        {"json": GOOD_PIXELS},
        None,
    ),
    "declared-too-large": (
        413,
        PREDICT,
        {"json": {"pixels": [[0.123456789] * 28] * 28 * 30}},
        "larger than the 200,000 bytes",
    ),
    "text-plain": (
        415,
        PREDICT,
        {"content": b"7", "headers": {"content-type": "text/plain"}},
        "not accepted",
    ),
    "no-content-type": (415, PREDICT, {"content": b"{}"}, "'none' is not accepted"),
    "urlencoded-form": (415, PREDICT, {"data": {"pixels": "1"}}, "not accepted"),
    "invalid-json": (422, PREDICT, json_body("{not json"), "Invalid JSON"),
    "json-not-object": (422, PREDICT, json_body("[1, 2]"), "Invalid request"),
    "nan-pixels": (422, PREDICT, json_body('{"pixels": [[NaN]]}'), None),
    "nan-right-shape": (
        422,
        PREDICT,
        json_body(json.dumps({"pixels": [[0.0] * 28] * 27 + [[float("nan")] * 28]})),
        "NaN",
    ),
    "wrong-shape": (422, PREDICT, {"json": {"pixels": [[0.0] * 5] * 5}}, "expects"),
    "out-of-range": (422, PREDICT, {"json": {"pixels": [[255] * 28] * 28}}, "divide 0-255"),
    "no-image": (422, PREDICT, {"json": {"top_k": 3}}, "exactly one"),
    "two-images": (422, PREDICT, {"json": {**GOOD_PIXELS, "image_base64": "AAAA"}}, "exactly one"),
    "server-path": (422, PREDICT, {"json": {"image_path": "/etc/passwd"}}, "Extra inputs"),
    "path-as-base64": (422, PREDICT, {"json": {"image_base64": "/etc/passwd"}}, "base64"),
    "undecodable-base64-image": (
        422,
        PREDICT,
        {"json": {"image_base64": "aGVsbG8="}},
        "not a readable image",
    ),
    "top-k-zero": (422, PREDICT, {"json": {**GOOD_PIXELS, "top_k": 0}}, "top_k"),
    "undecodable-upload": (
        422,
        PREDICT,
        {"files": {"file": ("x.png", b"junk", "image/png")}},
        "not a readable image",
    ),
    "upload-without-file-field": (
        422,
        PREDICT,
        {"files": {"image": ("x.png", b"1", "image/png")}},
        "field 'file'",
    ),
    "upload-bad-top-k": (
        422,
        PREDICT,
        {"files": {"file": ("x.png", b"1", "image/png")}, "data": {"top_k": "many"}},
        "top_k",
    ),
    "malformed-multipart": (
        422,
        PREDICT,
        {"content": b"--x\r\nnonsense", "headers": {"content-type": "multipart/form-data"}},
        "multipart",
    ),
}


@pytest.mark.parametrize("case", CLIENT_ERRORS.values(), ids=CLIENT_ERRORS.keys())
def test_client_errors_get_their_status_and_a_message(client, case):
    status, url, request, message = case
    response = client.post(url, **request) if request is not None else client.get(url)
    assert response.status_code == status, response.text
    if message:
        assert re.search(message, response.json()["detail"])


def test_a_body_without_length_over_the_limit_is_refused_while_reading(client):
    def chunks():
        for _ in range(30):
            yield b" " * 10_000

    response = client.post(PREDICT, content=chunks(), headers={"content-type": "application/json"})
    assert response.status_code == 413


def test_the_server_keeps_serving_after_every_kind_of_error(client):
    for status, url, request, _ in CLIENT_ERRORS.values():
        client.post(url, **request) if request is not None else client.get(url)
        assert client.post(PREDICT, json=GOOD_PIXELS).status_code == 200, status


def test_concurrent_requests_share_forward_passes(app):
    """32 requests in flight at once take fewer than 32 forward passes."""
    batcher = app.state.registry.get("tiny-digits").batcher
    rng = np.random.default_rng(5)
    inputs = [rng.random((28, 28)).astype(np.float32) for _ in range(32)]

    async def ask_all() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            return await asyncio.gather(
                *(http.post(PREDICT, json={"pixels": x.tolist(), "top_k": 10}) for x in inputs)
            )

    batches_before, examples_before = batcher.batches_run, batcher.examples_run
    responses = asyncio.run(ask_all())
    assert all(r.status_code == 200 for r in responses)
    assert batcher.examples_run - examples_before == 32
    assert batcher.batches_run - batches_before < 32
    # Each answer belongs to its own request.
    model = batcher.forward
    for x, response in zip(inputs, responses, strict=True):
        expected = softmax(model(x[None, None])[0])
        np.testing.assert_allclose(as_vector(response.json()["predictions"]), expected, atol=1e-6)


def test_the_api_is_described_with_both_body_types(client):
    spec = client.get("/openapi.json").json()
    body = spec["paths"]["/v1/models/{name}/predict"]["post"]["requestBody"]["content"]
    assert set(body) == {"application/json", "multipart/form-data"}
    assert "pixels" in body["application/json"]["schema"]["properties"]
    assert client.get("/docs").status_code == 200


def test_the_page_and_its_assets_are_served_without_external_links(client):
    page = client.get("/")
    assert page.status_code == 200 and '<canvas id="draw-canvas"' in page.text
    for asset in ("app.js", "style.css"):
        assert client.get(f"/static/{asset}").status_code == 200
    for path in (p for p in STATIC.rglob("*") if p.is_file()):
        assert not re.search(
            r"(src|href)=\"https?://|url\(https?:|fetch\(\"https?:", path.read_text()
        ), path.name


def test_static_files_cannot_reach_outside_their_folder(client):
    for url in ("/static/../app.py", "/static/%2e%2e/app.py", "/static/..%2Fapp.py"):
        assert client.get(url).status_code == 404
