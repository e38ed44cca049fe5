"""Serving GAN generators: ``dlnd export`` of a GAN run, ``POST .../generate`` (the images of
``dlnd sample`` for the same seed, a latent walk, its bounds), and the page's tab in a browser.

The course GAN is a real quick run on the embedded digits; the DCGAN is a saved run of a
colour generator with seeded weights and batch-norm statistics (its export and serving are
what is tested, not its training, which tests/test_generative_recipes.py covers).
"""

from __future__ import annotations

import base64
import io
import json
import subprocess
import sys
from pathlib import Path

import httpx
import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image
from test_serve_browser import OUTPUT, open_page, require_browser, start_serving

from dlnd import run_recipe
from dlnd.checkpoint import load_model, save_model
from dlnd.cli import main
from dlnd.errors import UserError
from dlnd.generative.latent import seeded_latent
from dlnd.generative.models import build_gan, latent_path
from dlnd.serve.app import create_app
from dlnd.serve.errors import InputError
from dlnd.serve.export import TOLERANCE
from dlnd.serve.exporting import export_run
from dlnd.serve.generation import MAX_IMAGES, MAX_SEED, MAX_STEPS, GenerateRequest
from dlnd.serve.runtime import OnnxModel
from dlnd.serve.task import parse_json

pytestmark = pytest.mark.slow

DCGAN_INFO = {
    "task": "image-generation",
    "model": "dcgan",
    "latent_size": 16,
    "image_shape": [3, 32, 32],
    "width": 8,
    "dataset": "cifar10",
}


def save_dcgan_run(run_dir: Path) -> Path:
    """A dcgan run folder holding a seeded colour generator, as the loop would save it."""
    torch.manual_seed(3)
    gan = build_gan(DCGAN_INFO)
    with torch.no_grad():  # non-trivial batch-norm statistics
        for module in gan.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.2, 0.2)
                module.running_var.uniform_(0.5, 2.0)
    meta = {"recipe": "dcgan", "config": {"epochs": 1}, "info": DCGAN_INFO, "epoch": 1}
    save_model(run_dir, gan.state_dict(), meta)
    return run_dir


@pytest.fixture(scope="module")
def gan_runs(tmp_path_factory) -> dict[str, Path]:
    """``gan``: one epoch of gan-mnist on the embedded digits (judged by a one-epoch
    mnist-cnn); ``dcgan``: a saved colour DCGAN."""
    out = tmp_path_factory.mktemp("gan-runs")
    common = {"quick": True, "embedded": True, "out": str(out), "device": "cpu", "epochs": 1}
    judge = run_recipe("mnist-cnn", **common)["run_dir"]
    gan = run_recipe("gan-mnist", **common, judge=judge, fid_samples=100)["run_dir"]
    return {"gan": Path(gan), "dcgan": save_dcgan_run(out / "dcgan-saved")}


@pytest.fixture(scope="module")
def exports(gan_runs, tmp_path_factory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("gan-exports")
    return {key: export_run(run, "onnx", out / key) for key, run in gan_runs.items()}


@pytest.fixture(scope="module")
def client(exports):
    app = create_app([exports["gan"], exports["dcgan"]])
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


def generators(gan_runs) -> dict[str, torch.nn.Module]:
    return {key: load_model(run)[0].generator for key, run in gan_runs.items()}


def decode(answer: dict) -> np.ndarray:
    """The base64 PNG images of an answer as uint8 ``(N, C, H, W)``."""
    images = []
    for text in answer["images"]:
        with Image.open(io.BytesIO(base64.b64decode(text))) as picture:
            assert picture.format == "PNG"
            pixels = np.asarray(picture)
        images.append(pixels[None] if pixels.ndim == 2 else pixels.transpose(2, 0, 1))
    return np.stack(images)


def test_export_writes_the_generator_and_a_card_that_describes_it(exports, gan_runs):
    for key, folder in exports.items():
        card = json.loads((folder / "model_card.json").read_text())
        generator = generators(gan_runs)[key]
        assert card["task"] == "image-generation" and card["format"] == "onnx"
        assert card["input"]["latent_size"] == generator.latent_size
        assert card["input"]["distribution"] == generator.latent_distribution
        shape = [card["output"][k] for k in ("channels", "height", "width")]
        assert shape == list(generator.image_shape)
        assert card["verification"]["max_abs_diff_vs_pytorch"] <= TOLERANCE
        # checked here too, on latent vectors of another scale than the export's check
        z = torch.randn(3, generator.latent_size, generator=torch.Generator().manual_seed(9))
        with torch.no_grad():
            expected = generator.eval()(2 * z).numpy()
        exported = OnnxModel(folder / card["file"])((2 * z).numpy())
        np.testing.assert_allclose(exported, expected, atol=TOLERANCE)
    gan_card = json.loads((exports["gan"] / "model_card.json").read_text())
    assert gan_card["recipe"] == "gan-mnist" and gan_card["metrics"]["final"]["epochs"] == 1


def test_a_classifier_only_export_refuses_a_generator_with_a_sentence(gan_runs, tmp_path):
    from dlnd.serve.export import export_model

    model, meta = load_model(gan_runs["gan"])
    with pytest.raises(UserError, match="does not describe an image classifier"):
        export_model(model, meta, "onnx", tmp_path)


def test_the_same_seed_gives_the_images_of_dlnd_sample(client, gan_runs, tmp_path, capsys):
    assert (
        main(["sample", str(gan_runs["gan"]), "--n", "6", "--seed", "11", "--out", str(tmp_path)])
        == 0
    )
    sampled = np.load(tmp_path / "samples.npz")["images"]
    answer = client.post("/v1/models/gan-mnist/generate", json={"n": 6, "seed": 11})
    assert answer.status_code == 200
    body = answer.json()
    assert (body["model"], body["width"], body["height"]) == ("gan-mnist", 28, 28)
    served = decode(body)
    assert served.shape == sampled.shape == (6, 1, 28, 28)
    # ONNX Runtime and PyTorch round the same pixel differently at most when the value lies
    # within float32 round-off of k + 0.5.
    assert np.abs(served.astype(int) - sampled).max() <= 1
    assert (served == sampled).mean() > 0.999
    again = decode(client.post("/v1/models/gan-mnist/generate", json={"n": 6, "seed": 11}).json())
    other = decode(client.post("/v1/models/gan-mnist/generate", json={"n": 6, "seed": 12}).json())
    assert np.array_equal(again, served) and not np.array_equal(other, served)


def test_a_colour_generator_answers_rgb_pngs_of_its_seed(client, gan_runs):
    generator = generators(gan_runs)["dcgan"]
    served = decode(client.post("/v1/models/dcgan/generate", json={"n": 4, "seed": 5}).json())
    expected = generator.generate(4, 5).numpy()
    assert served.shape == expected.shape == (4, 3, 32, 32)
    assert np.abs(served.astype(int) - expected).max() <= 1


def test_the_latent_walk_goes_from_one_seeds_image_to_the_others(client, gan_runs):
    generator = generators(gan_runs)["dcgan"]
    body = {"interpolate": [3, 8], "steps": 5}
    served = decode(client.post("/v1/models/dcgan/generate", json=body).json())
    start, end = (
        torch.from_numpy(seeded_latent(1, generator.latent_size, generator.latent_distribution, s))
        for s in (3, 8)
    )
    expected = generator.render(latent_path(start[0], end[0], 5)).numpy()
    assert served.shape == (5, 3, 32, 32)
    assert np.abs(served.astype(int) - expected).max() <= 1
    first = decode(client.post("/v1/models/dcgan/generate", json={"n": 1, "seed": 3}).json())
    assert np.array_equal(served[:1], first)


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"n": 0, "seed": 1}, "n: Input should be greater than or equal to 1"),
        ({"n": MAX_IMAGES + 1, "seed": 1}, f"less than or equal to {MAX_IMAGES}"),
        ({"n": 2, "seed": -1}, "seed: Input should be greater than or equal to 0"),
        ({"n": 2, "seed": MAX_SEED + 1}, "seed: Input should be less than or equal"),
        ({"n": 2, "seed": "4"}, "seed: Input should be a valid integer"),
        ({"n": 2.0, "seed": 4}, "n: Input should be a valid integer"),
        ({"n": 2}, "give exactly one of seed (with n) or interpolate"),
        ({"seed": 1, "interpolate": [1, 2]}, "give exactly one of seed"),
        ({"interpolate": [1, 2], "steps": 1}, "steps: Input should be greater than or equal to 2"),
        ({"interpolate": [1, 2], "steps": MAX_STEPS + 1}, "steps: Input should be less"),
        ({"interpolate": [1, 2], "n": 3}, "n goes with seed"),
        ({"seed": 1, "steps": 3}, "steps goes with interpolate"),
        ({"interpolate": [1]}, "interpolate.1: Field required"),
        ({"seed": 1, "prompt": "a cat"}, "prompt: Extra inputs are not permitted"),
    ],
)
def test_bad_requests_get_a_422_with_one_sentence(client, body, words):
    answer = client.post("/v1/models/gan-mnist/generate", json=body)
    assert answer.status_code == 422
    detail = answer.json()["detail"]
    assert words in detail and detail.endswith(".") and "\n" not in detail


def test_a_body_with_more_values_than_a_request_holds_is_refused_unparsed(client):
    answer = client.post("/v1/models/gan-mnist/generate", json={"seed": 1, "x": [0] * 10_000})
    assert answer.status_code == 422 and "more values than a generate request" in answer.text


def test_the_generator_has_no_predict_endpoint_and_takes_json_only(client):
    assert client.post("/v1/models/gan-mnist/predict", json={"n": 1, "seed": 1}).status_code == 404
    answer = client.post("/v1/models/gan-mnist/generate", files={"file": ("a.png", b"x")})
    assert answer.status_code == 415
    listed = {m["name"]: m for m in client.get("/v1/models").json()["models"]}
    assert listed["dcgan"]["image"] == {"channels": 3, "height": 32, "width": 32}
    assert listed["gan-mnist"]["endpoints"] == ["generate"]


@settings(max_examples=60, deadline=None)
@given(n=st.integers(-5, MAX_IMAGES + 5), seed=st.integers(-5, MAX_SEED + 5))
def test_requests_are_valid_exactly_within_the_bounds(n, seed):
    body = f'{{"n": {n}, "seed": {seed}}}'.encode()
    if 1 <= n <= MAX_IMAGES and 0 <= seed <= MAX_SEED:
        request = parse_json(GenerateRequest, body)
        assert (request.n, request.seed) == (n, seed)
    else:
        with pytest.raises(InputError):
            parse_json(GenerateRequest, body)


def test_the_tab_shows_a_seeds_digits_follows_the_slider_and_walks(gan_runs):
    """``dlnd serve`` of the run folder itself (exported on start), in a real browser."""
    sync_api = require_browser()
    expect = sync_api.expect
    process, url = start_serving(str(gan_runs["gan"]))
    errors: list[str] = []
    try:
        with sync_api.sync_playwright() as playwright:
            browser, page = open_page(playwright, url, errors)
            try:
                page.wait_for_selector("body[data-ready=true]", timeout=20_000)
                page.locator("#tab-generation").click()
                expect(page.locator("#generate-grid img")).to_have_count(16, timeout=20_000)
                expect(page.locator("#walk-strip img")).to_have_count(10, timeout=20_000)
                page.locator("#generate-seed").fill("5")
                expect(page.locator("#generate-grid")).to_have_attribute(
                    "data-seed", "5", timeout=20_000
                )
                first = page.locator("#generate-grid img").first.get_attribute("src")
                page.locator("#walk-start").fill("3")
                page.locator("#walk-end").fill("5")
                page.locator("#walk-button").click()
                expect(page.locator("#walk-strip")).to_have_attribute(
                    "data-ends", "3-5", timeout=20_000
                )
                last = page.locator("#walk-strip img").last.get_attribute("src")
                OUTPUT.mkdir(exist_ok=True)
                page.screenshot(path=str(OUTPUT / "serve-generation.png"), full_page=True)
            finally:
                browser.close()
        api = httpx.post(f"{url}/v1/models/gan-mnist/generate", json={"n": 16, "seed": 5}).json()
        alone = httpx.post(f"{url}/v1/models/gan-mnist/generate", json={"n": 1, "seed": 5}).json()
    finally:
        process.terminate()
        process.wait(timeout=30)
    assert errors == []
    assert first == f"data:image/png;base64,{api['images'][0]}"
    assert last == f"data:image/png;base64,{alone['images'][0]}"


def test_serving_a_generator_never_imports_pytorch(exports):
    code = f"""
import sys
from fastapi.testclient import TestClient
from dlnd.serve.app import create_app
with TestClient(create_app([{str(exports["gan"])!r}])) as client:
    answer = client.post("/v1/models/gan-mnist/generate", json={{"n": 2, "seed": 1}})
print(answer.status_code, len(answer.json()["images"]), "torch" in sys.modules)
"""
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True
    )
    assert result.stdout.strip() == "200 2 False"
