"""The web page in a real browser: ``dlnd serve`` with the demo models, a "1" drawn with the
mouse, an image dropped in. Needs Debian's ``chromium`` and the ``playwright`` package
(no browser download); skipped without them, except under ``CI=true`` where it fails.
"""

from __future__ import annotations

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
from serve_fixtures import cifar_test_jpegs

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


@pytest.fixture(scope="module")
def server_url() -> Iterator[str]:
    """``dlnd serve`` (the demo models) running in a subprocess on a free local port."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "dlnd", "serve", "--port", str(port)],
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
            page.wait_for_function(
                "document.querySelectorAll('#draw-predictions li').length === 10", timeout=20_000
            )
            page.locator("#file-input").set_input_files(str(photo))
            page.wait_for_function(
                "document.querySelectorAll('#upload-predictions li').length === 5", timeout=20_000
            )
            page.wait_for_timeout(300)  # let the last live prediction settle
            best_digit = page.locator("#draw-predictions li .label").first.text_content()
            status = page.locator("#draw-status").text_content()
            page.screenshot(path=str(OUTPUT / "serve-browser.png"), full_page=True)
        finally:
            browser.close()
    assert errors == []
    assert best_digit == "1", status
    assert (OUTPUT / "serve-browser.png").stat().st_size > 10_000
