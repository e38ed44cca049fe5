"""Each weakness a probe of ``dlnd serve`` found, reproduced as it was found, and kept fixed.

Memory is measured in a fresh subprocess (its peak resident size), since the test process
has already grown for other reasons.
"""

from __future__ import annotations

import asyncio
import gc
import io
import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from serve_fixtures import tiny_exports

from dlnd.serve import classifier
from dlnd.serve.app import create_app

PREDICT = "/v1/models/tiny-digits/predict"
COLOUR_PREDICT = "/v1/models/tiny-colour/predict"


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    return tiny_exports(tmp_path_factory)


@pytest.fixture(scope="module")
def app(exports):
    return create_app([exports["digits"], exports["colour"]], max_batch=8, max_wait_ms=1)


@pytest.fixture(scope="module")
def client(app):
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


def peak_memory_mb(setup: str, code: str) -> float:
    """Run ``setup`` then ``code`` in a fresh interpreter; how much ``code`` raised the
    process's peak resident memory (MB)."""
    program = f"""
import resource
{setup}
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
{code}
print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024)
"""
    result = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, timeout=300, check=True
    )
    return float(result.stdout.split()[-1])


def fastest_of_three(request: Callable[[], httpx.Response]) -> tuple[float, httpx.Response]:
    """The shortest of three timed ``request()`` calls (after a garbage collection) and the
    last answer: one pause of a loaded machine, or of this process's large heap, does not
    fail a test of a refusal that takes ~10 ms, while one that decodes the input still does."""
    gc.collect()
    times = []
    for _ in range(3):
        started = time.perf_counter()
        response = request()
        times.append(time.perf_counter() - started)
    return min(times), response


# ---- JSON pixel bodies -------------------------------------------------------------------

STRING_PIXELS = json.dumps({"pixels": [["a"] * 1000] * 700})  # 3.5 MB of strings
LONG_PIXELS = json.dumps({"pixels": [[0.5] * 1000] * 1000})  # 5 MB of numbers


@pytest.mark.parametrize("body", [STRING_PIXELS, LONG_PIXELS], ids=["strings", "too-long"])
def test_a_large_pixel_body_is_refused_at_once(client, body):
    """Probe: 3.5 MB of strings took 1.8 s and 1.6 GB to validate (1.4 million errors)."""
    seconds, response = fastest_of_three(
        lambda: client.post(PREDICT, content=body, headers={"content-type": "application/json"})
    )
    assert seconds < 0.5
    assert response.status_code == 422
    assert "more values than this model's input; send at most 1," in response.json()["detail"]


def serving_setup(*folders) -> str:
    """Code that starts a test client on ``folders`` and warms it up with one request."""
    return f"""
import json
from fastapi.testclient import TestClient
from dlnd.serve.app import create_app
client = TestClient(create_app({[str(f) for f in folders]!r}))
client.get("/healthz")
"""


def test_validating_large_pixel_bodies_takes_little_memory(exports):
    """Probe: 7.6 MB of pixels took 4.6 GB."""
    code = f"""
bodies = [json.dumps({{"pixels": [["a"] * 1000] * 700}}),
          json.dumps({{"pixels": [[0.5] * 1000] * 1500}})]
for body in bodies:
    answer = client.post("{PREDICT}", content=body, headers={{"content-type": "application/json"}})
    assert answer.status_code == 422, answer.text
"""
    assert peak_memory_mb(serving_setup(exports["digits"]), code) < 100


def test_the_event_loop_answers_healthz_while_big_bodies_are_refused(app):
    """Probe: 2 MB of strings held /healthz for 1.9 s."""

    async def traffic() -> list[float]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            headers = {"content-type": "application/json"}
            bad = asyncio.gather(
                *(http.post(PREDICT, content=STRING_PIXELS, headers=headers) for _ in range(6))
            )
            waits = []
            while not bad.done():  # ping every 10 ms for as long as the bodies are handled
                started = time.perf_counter()
                await asyncio.sleep(0.01)
                assert (await http.get("/healthz")).status_code == 200
                waits.append(time.perf_counter() - started - 0.01)
            assert all(r.status_code == 422 for r in await bad)
            return waits

    gc.collect()
    waits = asyncio.run(traffic())
    # Each refusal takes ~10 ms now; one pause of a loaded machine may reach a ping, so the
    # second-longest wait is judged (the probe's bug held every ping for the whole 1.9 s).
    assert sorted(waits)[-2 if len(waits) > 1 else -1] < 0.25, waits


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"pixels": [[0.0] * 28] * 28, "top_k": True}, "top_k"),
        ({"pixels": [[0.0] * 28] * 28, "top_k": "3"}, "top_k"),
        ({"pixels": [["0.5"] * 28] * 28}, "pixels.0.0: Input should be a valid number"),
        ({"image_base64": 12}, "image_base64"),
    ],
    ids=["top-k-true", "top-k-string", "pixels-as-strings", "base64-as-number"],
)
def test_values_of_the_wrong_json_type_are_refused(client, body, field):
    """Probe: "top_k": true was read as 1, and numbers given as strings were accepted."""
    response = client.post(PREDICT, json=body)
    assert response.status_code == 422
    assert field in response.json()["detail"]


@pytest.mark.parametrize("top_k", [" 5", "5_0", "\u0663", "+2", "2.0"])
def test_form_top_k_takes_plain_digits_only(client, top_k):
    png = encode(np.zeros((28, 28), np.uint8), "PNG")
    response = client.post(PREDICT, files={"file": ("a.png", png)}, data={"top_k": top_k})
    assert response.status_code == 422
    assert "top_k must be a whole number" in response.json()["detail"]


# ---- Uploaded images ---------------------------------------------------------------------


def encode(array: np.ndarray, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, fmt, **options)
    return buffer.getvalue()


def eps_file() -> bytes:
    """An encapsulated PostScript file: Pillow would hand it to Ghostscript if installed."""
    return b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 28 28\nnewpath 0 0 moveto showpage\n"


OTHER_FORMATS = {
    "tiff": lambda: encode(np.zeros((28, 28), np.uint8), "TIFF"),
    "tga": lambda: encode(np.zeros((28, 28), np.uint8), "TGA"),
    "ppm": lambda: encode(np.zeros((28, 28), np.uint8), "PPM"),
    "ico": lambda: encode(np.zeros((28, 28, 3), np.uint8), "ICO"),
    "eps": eps_file,
}


@pytest.mark.parametrize("make", OTHER_FORMATS.values(), ids=OTHER_FORMATS.keys())
def test_only_the_promised_image_formats_are_decoded(client, make):
    """Probe: TIFF and TGA uploads answered 200 (any of Pillow's ~43 formats was tried)."""
    response = client.post(PREDICT, files={"file": ("x", make())})
    assert response.status_code == 422
    assert "it is not PNG, JPEG, GIF, BMP or WebP" in response.json()["detail"]


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "GIF", "BMP", "WEBP"])
def test_the_promised_formats_are_decoded(client, fmt):
    response = client.post(
        PREDICT, files={"file": ("x", encode(np.zeros((40, 30), np.uint8), fmt))}
    )
    assert response.status_code == 200, response.text


def test_a_huge_png_for_a_small_model_is_refused_before_decoding(client, exports):
    """Probe: a 143 KB PNG of 50 megapixels was decoded in full for a 28x28 model (330 MB,
    about 1 s)."""
    huge = encode(np.zeros((7000, 7000), np.uint8), "PNG")
    assert len(huge) < 200_000
    seconds, response = fastest_of_three(
        lambda: client.post(PREDICT, files={"file": ("huge.png", huge)})
    )
    assert seconds < 0.5
    assert response.status_code == 422
    assert "7000x7000 pixels would be decoded and at most 4,194,304" in response.json()["detail"]
    code = f"""
import io
from PIL import Image
data = io.BytesIO()
Image.new("L", (7000, 7000)).save(data, "PNG")
answer = client.post("{PREDICT}", files={{"file": ("huge.png", data.getvalue())}})
assert answer.status_code == 422, answer.text
"""
    assert peak_memory_mb(serving_setup(exports["digits"]), code) < 60


def test_a_big_jpeg_is_reduced_while_it_is_decoded(client):
    """A 12-megapixel phone photo decodes at 1/8 scale for a 32x32 model: accepted."""
    photo = np.random.default_rng(0).integers(0, 256, (3000, 4000, 3), dtype=np.uint8)
    response = client.post(COLOUR_PREDICT, files={"file": ("photo.jpg", encode(photo, "JPEG"))})
    assert response.status_code == 200, response.text


def test_concurrent_uploads_are_decoded_a_few_at_a_time(exports, monkeypatch):
    """Probe: up to 40 uploads were decoded at once (the default thread pool)."""
    app = create_app([exports["colour"]], max_batch=8, max_wait_ms=1, parse_threads=2)
    active, most = 0, 0
    lock = threading.Lock()
    real_decode = classifier.decode_image

    def counting_decode(data, spec):
        nonlocal active, most
        with lock:
            active += 1
            most = max(most, active)
        try:
            time.sleep(0.02)  # long enough for the uploads to overlap
            return real_decode(data, spec)
        finally:
            with lock:
                active -= 1

    monkeypatch.setattr(classifier, "decode_image", counting_decode)
    photo = encode(np.random.default_rng(1).integers(0, 256, (600, 800, 3), np.uint8), "PNG")

    async def uploads() -> list[int]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            responses = await asyncio.gather(
                *(http.post(COLOUR_PREDICT, files={"file": ("p.png", photo)}) for _ in range(12))
            )
        return [r.status_code for r in responses]

    assert asyncio.run(uploads()) == [200] * 12
    assert most == 2
    app.state.registry.close()
