"""The web page in a real browser: ``dlnd serve`` with the demo models, a "1" drawn with the
mouse, an image dropped in. Needs Debian's ``chromium`` and the ``playwright`` package
(no browser download); skipped without them, except under ``CI=true`` where it fails.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from serve_fixtures import cifar_test_jpegs, tabular_runs

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
OUTPUT = Path(__file__).resolve().parents[1] / "test-output"


def require_browser():
    """The playwright module, or skip (fail under CI) when it or chromium is missing."""
    missing = None
    try:
        from playwright import sync_api
    except ImportError:
        missing = "the playwright package (pip install playwright)"
    if not Path(CHROMIUM).exists():
        missing = "Debian's chromium (apt-get install -y chromium)"
    if missing:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"the browser test needs {missing}")
        pytest.skip(f"the browser test needs {missing}")
    return sync_api


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def served(*folders: str) -> Iterator[str]:
    """``dlnd serve FOLDER...`` (the demo models without folders) in a subprocess on a free
    local port; yields its URL once ``/healthz`` answers, and stops it afterwards."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "dlnd", "serve", "--port", str(port), *folders],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"dlnd serve did not start:\n{process.stdout.read()}")
            time.sleep(0.25)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=20)


@pytest.fixture(scope="module")
def server_url() -> Iterator[str]:
    """``dlnd serve`` (the demo models) running in a subprocess on a free local port."""
    with served() as url:
        yield url


def draw_a_one(page, canvas) -> None:
    """A slightly slanted vertical stroke with a short flag at the top, like a handwritten 1."""
    box = canvas.bounding_box()
    x, y, w, h = box["x"], box["y"], box["width"], box["height"]
    page.mouse.move(x + 0.42 * w, y + 0.30 * h)
    page.mouse.down()
    page.mouse.move(x + 0.55 * w, y + 0.15 * h, steps=6)
    page.mouse.move(x + 0.52 * w, y + 0.85 * h, steps=20)
    page.mouse.up()


def test_drawing_a_one_and_dropping_an_image_show_predictions(server_url, shared_data, tmp_path):
    sync_api = require_browser()
    expect = sync_api.expect
    OUTPUT.mkdir(exist_ok=True)
    photo = tmp_path / "ship.jpg"  # a real CIFAR-10 test photo
    photo.write_bytes(dict(cifar_test_jpegs(shared_data, per_class=1))["ship"])
    errors: list[str] = []
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            page.on("pageerror", lambda err: errors.append(str(err)))
            page.on("console", lambda msg: msg.type == "error" and errors.append(msg.text))
            page.goto(server_url)
            page.wait_for_selector("body[data-ready=true]", timeout=20_000)
            draw_a_one(page, page.locator("#draw-canvas"))
            # Waiting through locators: the page's content policy forbids the eval that
            # wait_for_function would need.
            expect(page.locator("#draw-predictions li")).to_have_count(10, timeout=20_000)
            page.locator("#file-input").set_input_files(str(photo))
            expect(page.locator("#upload-predictions li")).to_have_count(5, timeout=20_000)
            page.wait_for_timeout(300)  # let the last live prediction settle
            best_digit = page.locator("#draw-predictions li .label").first.text_content()
            status = page.locator("#draw-status").text_content()
            page.screenshot(path=str(OUTPUT / "serve-browser.png"), full_page=True)
        finally:
            browser.close()
    assert errors == []
    assert best_digit == "1", status
    assert (OUTPUT / "serve-browser.png").stat().st_size > 10_000


def start_serving(*args: str) -> tuple[subprocess.Popen, str]:
    """``dlnd serve ARGS`` in a subprocess on a free local port, once it answers."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "dlnd", "serve", "--port", str(port), *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while True:
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                return process, url
        except httpx.TransportError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError("dlnd serve did not start")
        time.sleep(0.25)


@pytest.fixture(scope="module")
def tabular_url(tmp_path_factory) -> Iterator[str]:
    """``dlnd serve`` on the NumPy runs of bike-sharing and admissions (served directly)."""
    runs = tabular_runs(tmp_path_factory)
    process, url = start_serving(str(runs["bike"]), str(runs["admissions"]))
    yield url
    process.terminate()
    process.wait(timeout=30)


def open_page(playwright, url: str, errors: list[str]):
    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    page.on("pageerror", lambda err: errors.append(str(err)))
    page.on("console", lambda msg: msg.type == "error" and errors.append(msg.text))
    page.goto(url)
    return browser, page


def fill_features(page, values: dict) -> None:
    for name, value in values.items():
        field = page.locator(f"#feature-{name}")
        if field.evaluate("e => e.tagName") == "SELECT":
            field.select_option(str(value))
        elif field.get_attribute("type") == "checkbox":
            field.set_checked(bool(value))
        else:
            field.fill(str(value))


def test_the_form_built_from_the_card_gives_the_apis_answer_and_a_day_chart(tabular_url):
    sync_api = require_browser()
    expect = sync_api.expect
    OUTPUT.mkdir(exist_ok=True)
    hour = {"temp": 24.5, "hum": 55, "windspeed": 12, "season": "summer", "hr": 17}
    applicant = {"gre": 700, "gpa": 3.8, "rank": 1}
    answer = httpx.post(
        f"{tabular_url}/v1/models/admissions/predict", json={"features": applicant}
    ).json()["predictions"][0]
    # What the page must show for the applicant (not for the defaults it asks about first).
    admission_text = f"{answer['label']} ({100 * answer['probability']:.1f}%)"
    errors: list[str] = []
    with sync_api.sync_playwright() as playwright:
        browser, page = open_page(playwright, tabular_url, errors)
        try:
            page.wait_for_selector("body[data-ready=true]", timeout=20_000)
            page.locator("#tabular-model").select_option("bike-sharing")
            fields = page.locator("#tabular-fields label").all_text_contents()
            fill_features(page, hour)
            page.locator("#tabular-submit").click()
            # The chart of this request (not of the defaults asked when the model was chosen).
            expect(page.locator("#tabular-chart")).to_have_attribute(
                "data-chosen", "17", timeout=20_000
            )
            expect(page.locator("#tabular-chart")).to_have_attribute("data-points", "24")
            bikes = float(page.locator("#tabular-answer").get_attribute("data-value"))
            shown = page.locator("#tabular-answer").text_content()
            caption = page.locator("#tabular-chart-caption").text_content()
            chosen = page.locator("#tabular-chart circle.chosen").count()
            page.screenshot(path=str(OUTPUT / "serve-tabular.png"), full_page=True)
            page.locator("#tabular-model").select_option("admissions")
            fill_features(page, applicant)
            page.locator("#tabular-submit").click()
            expect(page.locator("#tabular-answer")).to_have_text(admission_text, timeout=20_000)
            expect(page.locator("#tabular-probabilities li")).to_have_count(2)
            admitted = page.locator("#tabular-answer").get_attribute("data-value")
            chart_hidden = page.locator("#tabular-chart-figure").is_hidden()
        finally:
            browser.close()
    assert errors == []
    assert "temperature (°C)" in fields and "hour of day" in fields
    defaults = httpx.get(f"{tabular_url}/v1/models/bike-sharing").json()["features"]
    features = {f["name"]: f.get("default") for f in defaults} | hour
    expected = httpx.post(
        f"{tabular_url}/v1/models/bike-sharing/predict", json={"features": features}
    ).json()["predictions"][0]["value"]
    assert bikes == pytest.approx(expected, rel=1e-6)
    assert shown.endswith("bikes per hour") and "the hour of day" in caption and chosen == 1
    assert admitted == answer["label"] and chart_hidden


def test_the_api_description_renders_without_a_cdn(tabular_url):
    """/docs runs Swagger UI from this server's own files, under its content policy."""
    sync_api = require_browser()
    errors: list[str] = []
    with sync_api.sync_playwright() as playwright:
        browser, page = open_page(playwright, f"{tabular_url}/docs", errors)
        try:
            page.wait_for_selector(".opblock", timeout=30_000)
            operations = page.locator(".opblock-summary-path").all_text_contents()
        finally:
            browser.close()
    assert errors == []
    assert "/v1/models/{name}/predict" in [o.replace("\u200b", "") for o in operations]


def test_a_photo_over_the_body_limit_is_resized_in_the_browser(server_url, tmp_path):
    """A 12-megapixel photo of more than 8 MB (the server's body limit) still gets an
    answer: the page resizes it to at most 2048 pixels a side and sends a JPEG."""
    sync_api = require_browser()
    expect = sync_api.expect
    import numpy as np
    from PIL import Image

    photo = tmp_path / "phone.jpg"
    noise = np.random.default_rng(0).integers(0, 256, (3000, 4000, 3), dtype=np.uint8)
    Image.fromarray(noise).save(photo, "JPEG", quality=98)
    assert photo.stat().st_size > 8 * 1024 * 1024
    errors: list[str] = []
    with sync_api.sync_playwright() as playwright:
        browser, page = open_page(playwright, server_url, errors)
        try:
            page.wait_for_selector("body[data-ready=true]", timeout=20_000)
            page.locator("#file-input").set_input_files(str(photo))
            expect(page.locator("#upload-predictions li")).to_have_count(5, timeout=60_000)
            status = page.locator("#upload-status").text_content()
        finally:
            browser.close()
    assert errors == []
    assert "resized in the browser from 4000x3000" in status and "to 2048x1536" in status
