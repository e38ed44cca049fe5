"""Serving style transfer: ``dlnd export`` of a style-transfer run (its artwork and settings),
the stylise / job endpoints (the image PyTorch paints, progress, bounds, a busy server), and
the page's tab in a browser. The run is a quick one on the embedded pictures (EfficientNet-
Lite0, whose weights install with dlnd)."""

from __future__ import annotations

import base64
import io
import json
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient
from PIL import Image
from test_serve_browser import OUTPUT, open_page, require_browser, start_serving

from dlnd import run_recipe
from dlnd.checkpoint import load_model
from dlnd.errors import UserError
from dlnd.pretrained import style
from dlnd.pretrained.registry import load_backbone
from dlnd.serve.app import create_app
from dlnd.serve.exporting import export_run
from dlnd.serve.style_export import export_style
from dlnd.serve.style_transfer import MAX_JOBS, MAX_SIZE, MAX_STEPS, MIN_SIZE
from dlnd.vision import synthetic

pytestmark = pytest.mark.slow

STYLISE, JOB = "/v1/models/style-arcs/stylise", "/v1/models/style-arcs/job"


@pytest.fixture(scope="module")
def style_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("style-run")
    final = run_recipe("style-transfer", quick=True, embedded=True, out=str(out), epochs=1)
    return Path(final["run_dir"])


@pytest.fixture(scope="module")
def client(style_run):
    """The run served directly (exported when the server starts)."""
    with TestClient(create_app([style_run]), raise_server_exceptions=False) as client:
        yield client


def jpeg(picture: Image.Image) -> bytes:
    buffer = io.BytesIO()
    picture.convert("RGB").save(buffer, "JPEG", quality=95)
    return buffer.getvalue()


PHOTO = jpeg(synthetic.road_scene())  # 192 x 128


def finished(client, job: dict, timeout: float = 120) -> dict:
    """Poll ``job`` until it is done or failed; returns its last state."""
    deadline = time.monotonic() + timeout
    while job["state"] in ("queued", "running"):
        assert time.monotonic() < deadline, job
        time.sleep(0.05)
        job = client.post(JOB, json={"job": job["job"]}).json()
    return job


def decode(text: str) -> np.ndarray:
    with Image.open(io.BytesIO(base64.b64decode(text))) as picture:
        assert picture.format == "PNG"
        return np.asarray(picture.convert("RGB"))


def test_export_keeps_the_runs_artwork_and_settings(style_run, tmp_path):
    folder = export_run(style_run, "onnx", tmp_path / "export")
    card = json.loads((folder / "model_card.json").read_text())
    _, meta = load_model(style_run)
    assert (card["name"], card["task"], card["format"]) == (
        "style-arcs",
        "style-transfer",
        "pytorch",
    )
    assert card["settings"]["backbone"] == meta["info"]["backbone"] == "efficientnet_lite0"
    assert card["settings"]["style_weight"] == meta["info"]["style_weight"]
    with Image.open(folder / card["file"]) as saved:
        assert np.array_equal(np.asarray(saved), np.asarray(synthetic.colour_arcs()))
    with pytest.raises(UserError, match="leave out --format torchscript"):
        export_run(style_run, "torchscript", tmp_path / "ts")
    gone = {**meta, "info": {**meta["info"], "style": str(tmp_path / "gone.jpg")}}
    with pytest.raises(UserError, match="gone.jpg, cannot be read"):
        export_style(None, gone, "onnx", tmp_path / "gone")


def test_a_dropped_photo_comes_back_painted_as_pytorch_paints_it(client, style_run):
    started = client.post(
        STYLISE, files={"file": ("road.jpg", PHOTO)}, data={"size": "96", "steps": "10"}
    )
    assert started.status_code == 200
    assert started.json()["state"] in ("queued", "running") and started.json()["steps"] == 10
    job = finished(client, started.json())
    assert job["state"] == "done" and job["step"] == 10 and job["detail"] is None
    assert (job["width"], job["height"]) == (96, 64)  # the photo's 3:2 kept
    served = decode(job["image"])
    assert served.shape == (64, 96, 3)
    assert decode(job["preview"]).shape == served.shape  # the image at step 5
    # The same optimisation in PyTorch, from the run's checkpoint and the library alone.
    _, meta = load_model(style_run)
    info, config = meta["info"], meta["config"]
    photo = style.resize_picture(Image.open(io.BytesIO(PHOTO)), 96)
    art = style.resize_picture(synthetic.colour_arcs(), 96)
    layers = style.style_layers_for("efficientnet_lite")
    layers = type(layers)(layers.content, layers.style, info["smoothing"], info["style_weight"])
    objective = style.StyleObjective(
        load_backbone("efficientnet_lite0"), photo, art, layers, config["content_weight"]
    )
    settings = style.StyleSettings(config["optimizer"], config["lr"])
    expected = np.asarray(style.to_pil(style.stylise(objective, photo, settings, 10)))
    assert np.abs(served.astype(int) - expected).mean() < 0.5
    with torch.no_grad():  # and the optimisation did its job
        painted = torch.from_numpy(served.transpose(2, 0, 1) / np.float32(255))[None]
        start, end = (objective(x)["loss"] for x in (photo, painted))
    assert end.item() < 0.8 * start.item()


def test_json_requests_take_a_base64_photo(client):
    body = {"image_base64": base64.b64encode(PHOTO).decode(), "size": 48, "steps": 2}
    job = finished(client, client.post(STYLISE, json=body).json())
    assert job["state"] == "done" and decode(job["image"]).shape == (32, 48, 3)


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"steps": "0"}, f"steps must be a whole number from 1 to {MAX_STEPS}"),
        ({"steps": str(MAX_STEPS + 1)}, f"from 1 to {MAX_STEPS}"),
        ({"size": str(MIN_SIZE - 1)}, f"size must be a whole number from {MIN_SIZE} to {MAX_SIZE}"),
        ({"size": str(MAX_SIZE + 1)}, f"to {MAX_SIZE}"),
        ({"size": "1e2"}, "size must be a whole number"),
    ],
)
def test_form_bounds_get_a_422_with_one_sentence(client, fields, words):
    answer = client.post(STYLISE, files={"file": ("road.jpg", PHOTO)}, data=fields)
    assert answer.status_code == 422
    assert words in answer.json()["detail"] and answer.json()["detail"].endswith(".")


@pytest.mark.parametrize(
    ("request_kwargs", "status", "words"),
    [
        ({"files": {"file": ("a.jpg", b"not an image")}}, 422, "not a readable image"),
        ({"data": {"steps": "3"}, "files": {"other": ("a.jpg", PHOTO)}}, 422, "field 'file'"),
        ({"json": {"image_base64": "%%%"}}, 422, "not valid base64"),
        ({"json": {"image_base64": "", "steps": 3, "colour": 1}}, 422, "colour: Extra inputs"),
        ({"json": {"image_base64": "", "size": 1000}}, 422, "size: Input should be less than"),
        ({"content": b"x", "headers": {"content-type": "text/plain"}}, 415, "not accepted"),
    ],
)
def test_bad_photos_and_requests_are_refused_with_one_sentence(
    client, request_kwargs, status, words
):
    answer = client.post(STYLISE, **request_kwargs)
    assert answer.status_code == status
    assert words in answer.json()["detail"] and "\n" not in answer.json()["detail"]


def test_an_unknown_job_is_a_404_that_says_what_to_do(client):
    answer = client.post(JOB, json={"job": "no-such-job"})
    assert answer.status_code == 404 and "start it again with stylise" in answer.json()["detail"]


def test_the_model_is_listed_with_its_artwork_and_limits(client):
    (model,) = client.get("/v1/models").json()["models"]
    assert model["task"] == "style-transfer" and model["endpoints"] == ["stylise", "job"]
    assert decode(model["style_image"]).shape[:2] == (96, 96)
    assert model["limits"] == {"size": [MIN_SIZE, MAX_SIZE], "steps": [1, MAX_STEPS], "jobs": 2}


def test_more_jobs_than_the_worker_takes_get_a_503(client):
    jobs = []
    for _ in range(MAX_JOBS):
        answer = client.post(
            STYLISE, files={"file": ("r.jpg", PHOTO)}, data={"steps": "30", "size": "96"}
        )
        assert answer.status_code == 200
        jobs.append(answer.json())
    refused = client.post(STYLISE, files={"file": ("r.jpg", PHOTO)}, data={"steps": "1"})
    assert refused.status_code == 503 and "try again in a few seconds" in refused.json()["detail"]
    states = [finished(client, job)["state"] for job in jobs]
    assert states == ["done"] * MAX_JOBS
    again = client.post(STYLISE, files={"file": ("r.jpg", PHOTO)}, data={"steps": "1"})
    assert again.status_code == 200  # room again once they are done
    finished(client, again.json())


def test_the_tab_paints_a_dropped_photo(style_run, tmp_path):
    sync_api = require_browser()
    expect = sync_api.expect
    photo = tmp_path / "road.jpg"
    photo.write_bytes(PHOTO)
    process, url = start_serving(str(style_run))
    errors: list[str] = []
    try:
        with sync_api.sync_playwright() as playwright:
            browser, page = open_page(playwright, url, errors)
            try:
                page.wait_for_selector("body[data-ready=true]", timeout=20_000)
                page.locator("#tab-style").click()
                expect(page.locator("#style-artwork")).to_be_visible()
                page.locator("#style-size").fill("64")
                page.locator("#style-steps").fill("10")
                page.locator("#style-file").set_input_files(str(photo))
                expect(page.locator("#style-result")).to_have_attribute(
                    "data-done", "true", timeout=60_000
                )
                status = page.locator("#style-status").text_content()
                progress = page.locator("#style-progress").get_attribute("max")
                result = page.locator("#style-result").get_attribute("src")
                OUTPUT.mkdir(exist_ok=True)
                page.screenshot(path=str(OUTPUT / "serve-style.png"), full_page=True)
            finally:
                browser.close()
    finally:
        process.terminate()
        process.wait(timeout=30)
    assert errors == []
    assert status.startswith("style-arcs: 64x43, 10 steps in") and progress == "10"
    assert decode(result.partition(",")[2]).shape == (43, 64, 3)


def test_the_served_optimisation_is_the_recipes(style_run):
    """stylise (the server's loop) and the recipe's task in the training loop take the same
    steps: the same photo, artwork and settings end in the run's own stylised.png."""
    _, meta = load_model(style_run)
    info, config = meta["info"], meta["config"]
    photo = style.resize_picture(synthetic.road_scene(), config["size"])
    art = style.resize_picture(synthetic.colour_arcs(), config["size"])
    layers = style.style_layers_for("efficientnet_lite")
    layers = type(layers)(layers.content, layers.style, info["smoothing"], info["style_weight"])
    objective = style.StyleObjective(
        load_backbone("efficientnet_lite0"), photo, art, layers, config["content_weight"]
    )
    settings = style.StyleSettings(config["optimizer"], config["lr"])
    steps = config["epochs"] * config["steps_per_epoch"]
    painted = np.asarray(style.to_pil(style.stylise(objective, photo, settings, steps)))
    with Image.open(style_run / "stylised.png") as saved:
        recipe = np.asarray(saved.convert("RGB"))
    assert np.abs(painted.astype(int) - recipe).max() <= 1


def test_closing_the_server_stops_a_running_job(style_run):
    registry = create_app([style_run]).state.registry
    model = registry.get("style-arcs")
    job = model.start(model.decode_photo(PHOTO, 256), 100)
    deadline = time.monotonic() + 60
    while model.job_status(job["job"])["step"] < 1:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    registry.close()
    stopped = model.job_status(job["job"])
    assert stopped["state"] == "failed" and stopped["step"] < 100
    assert stopped["detail"] == "The server stopped before the photo was painted."


def test_a_style_card_must_say_pytorch(style_run, tmp_path):
    folder = export_run(style_run, "onnx", tmp_path / "export")
    card = json.loads((folder / "model_card.json").read_text())
    (folder / "model_card.json").write_text(json.dumps({**card, "format": "onnx"}))
    with pytest.raises(UserError, match="holds a 'onnx' model card"):
        create_app([folder])
