"""The text tabs of the web page in a real browser: ``dlnd serve`` with a char-rnn export
writes a continuation of a typed prime; with a sentiment-rnn export, the sentiment of a
review follows it as it is typed. Needs Debian's ``chromium`` and the ``playwright``
package; skipped without them, except under ``CI=true`` where it fails.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from serve_fixtures import text_export
from test_serve_browser import CHROMIUM, CHROMIUM_ARGS, OUTPUT, require_browser, served


@pytest.fixture(scope="module")
def text_server(tmp_path_factory) -> Iterator[str]:
    """``dlnd serve`` of the exported text models in a subprocess on a free local port."""
    folders = [str(text_export(tmp_path_factory, key)) for key in ("chars", "reviews")]
    with served(*folders) as url:
        yield url


def test_typing_a_prime_writes_its_continuation(text_server):
    sync_api = require_browser()
    expect = sync_api.expect
    OUTPUT.mkdir(exist_ok=True)
    errors: list[str] = []
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.on("pageerror", lambda err: errors.append(str(err)))
            page.on("console", lambda msg: msg.type == "error" and errors.append(msg.text))
            page.goto(text_server)
            page.wait_for_selector("body[data-ready=true]", timeout=20_000)
            page.locator("#tab-write").click()
            page.locator("#write-prime").fill("Anna was")
            page.locator("#write-length").fill("80")
            page.locator("#write-seed").fill("3")
            page.locator("#write-submit").click()
            continuation = page.locator("#write-continuation")
            expect(continuation).to_have_attribute("data-done", "true", timeout=20_000)
            expect(page.locator("#write-prime-echo")).to_have_text("Anna was")
            temperature = float(page.locator("#write-temperature").input_value())
            top_k = page.locator("#write-top-k").input_value()
            shown = continuation.text_content()
            page.screenshot(path=str(OUTPUT / "serve-text-generation.png"), full_page=True)
        finally:
            browser.close()
    assert errors == []
    asked = {"prime": "Anna was", "length": 80, "temperature": temperature, "seed": 3}
    if top_k:
        asked["top_k"] = int(top_k)
    reply = httpx.post(f"{text_server}/v1/models/char-rnn/generate", json=asked, timeout=30)
    assert shown == reply.json()["text"]
    assert len(shown) == 80


def test_the_sentiment_follows_a_review_as_it_is_typed(text_server):
    sync_api = require_browser()
    expect = sync_api.expect
    OUTPUT.mkdir(exist_ok=True)
    errors: list[str] = []
    predict = f"{text_server}/v1/models/sentiment-rnn/predict"
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.on("pageerror", lambda err: errors.append(str(err)))
            page.on("console", lambda msg: msg.type == "error" and errors.append(msg.text))
            page.goto(text_server)
            page.wait_for_selector("body[data-ready=true]", timeout=20_000)
            page.locator("#tab-reviews").click()
            answer = page.locator("#review-answer")
            seen = []
            for review in (
                "the film is not good",
                "the film is not good , but the acting is superb",
            ):
                page.locator("#review-text").fill("")
                page.locator("#review-text").press_sequentially(review, delay=10)
                expected = httpx.post(predict, json={"text": review}, timeout=30).json()
                label = expected["predictions"][0]["label"]
                # the status names the word count of the text typed last, not of the one before
                status = f"read {expected['tokens']} words"
                expect(page.locator("#review-status")).to_contain_text(status, timeout=20_000)
                expect(answer).to_have_attribute("data-label", label, timeout=20_000)
                expect(page.locator("#review-predictions li")).to_have_count(2)
                seen.append(label)
            page.screenshot(path=str(OUTPUT / "serve-text-classification.png"), full_page=True)
        finally:
            browser.close()
    assert errors == []
    assert len(seen) == 2
