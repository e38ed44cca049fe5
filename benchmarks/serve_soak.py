"""Soak test of ``dlnd serve``: 64 clients for a bounded time, good and bad requests mixed.

One server on 127.0.0.1 serves the demo image models and two NumPy networks (bike-sharing
and admissions, trained on generated data first). For ``--duration`` seconds:

- 48 well-behaved clients send valid requests on keep-alive connections: pixel arrays,
  uploads, base64 images, 16-bit PNGs, tabular features and rows, model lists, /metrics;
- 15 misbehaving clients send every kind of bad request the probes found: megabytes of
  string pixels, over-long arrays, ``top_k: true``, a 50-megapixel PNG, TIFF and EPS
  files, a decompression bomb, headers or bodies that trickle, uploads abandoned
  halfway, a declared 20 MB body, a foreign Host, unknown models and features, bad JSON;
- 1 client asks ``/healthz`` every 50 ms and times it.

Pass criteria: no 5xx answer at all, no dropped connection or failed request for the
well-behaved clients, ``/healthz`` p99 <= 50 ms (over the whole run after warm-up, and the
worst 10-second window is reported too), and the server's resident memory at the end
within 10 % of its value after warm-up. Prints one table; exit status 1 if a criterion fails.

    python benchmarks/serve_soak.py --duration 300
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import glob
import io
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np
from PIL import Image
from serve_load import free_port, read_response, run, wait_until_up

GOOD_CLIENTS, BAD_CLIENTS = 48, 15
HEADER_TIMEOUT_S, BODY_TIMEOUT_S = 2.0, 4.0
HEALTHZ_EVERY_S = 0.05
READ_TIMEOUT_S = 30.0
WINDOW_S = 10.0


# ---- requests ---------------------------------------------------------------------------------


def post(path: str, port: int, body: bytes, content_type: str = "application/json") -> bytes:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def get(path: str, port: int, host: str | None = None) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: {host or f'127.0.0.1:{port}'}\r\n\r\n".encode()


def encoded(array: np.ndarray, fmt: str) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, fmt)
    return buffer.getvalue()


def multipart(data: bytes, filename: str, boundary: str = "soakboundary") -> tuple[bytes, str]:
    body = (
        (
            f"--{boundary}\r\n"
            f'Content-Disposition: form-data; name="file"; filename="{filename}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return body, f"multipart/form-data; boundary={boundary}"


def upload(path: str, port: int, data: bytes, filename: str) -> bytes:
    body, content_type = multipart(data, filename)
    return post(path, port, body, content_type)


def tabular_row(model: dict, rng: np.random.Generator) -> dict:
    """A valid row of features for a tabular model, from its card (defaults, jittered)."""
    row = {}
    for feature in model["features"]:
        value = feature.get("default")
        if feature["kind"] == "category":
            value = feature["categories"][rng.integers(len(feature["categories"]))]
        elif feature["kind"] in ("number", "integer") and "minimum" in feature:
            value = float(rng.uniform(feature["minimum"], feature["maximum"]))
            value = round(value) if feature["kind"] == "integer" else value
        row[feature["name"]] = value
    return row


def good_requests(port: int, models: dict[str, dict]) -> list[bytes]:
    rng = np.random.default_rng(0)
    mnist, cifar = "/v1/models/mnist-cnn/predict", "/v1/models/cifar10-cnn/predict"
    bike, admissions = "/v1/models/bike-sharing/predict", "/v1/models/admissions/predict"
    photo = encoded(rng.integers(0, 256, (48, 40, 3), dtype=np.uint8), "JPEG")
    grey16 = encoded(rng.integers(0, 65536, (28, 28), dtype=np.uint16), "PNG")
    requests = []
    for _ in range(20):
        pixels = np.round(rng.random((28, 28)), 3).tolist()
        requests.append(post(mnist, port, json.dumps({"pixels": pixels, "top_k": 3}).encode()))
        row = tabular_row(models["bike-sharing"], rng)
        requests.append(post(bike, port, json.dumps({"features": row}).encode()))
    b64 = base64.b64encode(photo).decode()
    day = [{**tabular_row(models["bike-sharing"], rng), "hr": h} for h in range(24)]
    applicant = tabular_row(models["admissions"], rng)
    requests += [
        upload(cifar, port, photo, "photo.jpg"),
        upload(mnist, port, grey16, "grey16.png"),
        post(cifar, port, json.dumps({"image_base64": b64, "top_k": 2}).encode()),
        post(bike, port, json.dumps({"rows": day}).encode()),
        post(admissions, port, json.dumps({"features": applicant}).encode()),
        get("/v1/models", port),
        get("/metrics", port),
        get("/", port),
    ]  # fmt: skip
    return requests


def bad_requests(port: int) -> dict[str, bytes]:
    """Every kind of bad request, as bytes to send in one go (trickling ones are separate)."""
    mnist, bike = "/v1/models/mnist-cnn/predict", "/v1/models/bike-sharing/predict"
    strings = json.dumps({"pixels": [["a"] * 1000] * 700}).encode()
    too_long = json.dumps({"pixels": [[0.5] * 1000] * 1000}).encode()
    huge_png = encoded(np.zeros((7000, 7000), np.uint8), "PNG")
    bomb = bytearray(encoded(np.zeros((1, 1), np.uint8), "PNG"))  # claims 50000 x 50000
    bomb[16:24] = (50000).to_bytes(4, "big") * 2
    tiff = encoded(np.zeros((28, 28), np.uint8), "TIFF")
    eps = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 28 28\nshowpage\n"
    return {
        "string pixels": post(mnist, port, strings),
        "over-long pixels": post(mnist, port, too_long),
        "top_k true": post(mnist, port, b'{"pixels": [[0.1]], "top_k": true}'),
        "50-megapixel PNG": upload(mnist, port, huge_png, "huge.png"),
        "PNG bomb header": upload(mnist, port, bytes(bomb), "bomb.png"),
        "TIFF": upload(mnist, port, tiff, "a.tif"),
        "EPS": upload(mnist, port, eps, "a.eps"),
        "declared 20 MB": (
            f"POST {mnist} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            "Content-Type: application/json\r\nContent-Length: 20000000\r\n\r\n"
        ).encode(),
        "foreign Host": get("/v1/models", port, host="evil.example"),
        "unknown model": post("/v1/models/nope/predict", port, b"{}"),
        "unknown feature": post(bike, port, b'{"features": {"hour": 8}}'),
        "bad JSON": post(mnist, port, b"{not json"),
        "text/plain": post(mnist, port, b"7", "text/plain"),
    }


# ---- clients ----------------------------------------------------------------------------------


class Tally:
    """Outcomes of the run, by client kind."""

    def __init__(self) -> None:
        self.good: Counter = Counter()
        self.bad: Counter = Counter()
        self.server_errors = 0
        self.dropped = 0
        self.healthz: list[tuple[float, float]] = []  # (time since start, seconds)


async def exchange(connection, payload: bytes) -> tuple[int, bytes, bool]:
    reader, writer = connection
    writer.write(payload)
    return await asyncio.wait_for(read_response(reader), READ_TIMEOUT_S)


async def good_client(port: int, requests: list[bytes], stop: float, tally: Tally, seed: int):
    rng = random.Random(seed)
    connection = None
    while time.monotonic() < stop:
        try:
            if connection is None:
                connection = await asyncio.open_connection("127.0.0.1", port)
            status, _, keep_alive = await exchange(connection, rng.choice(requests))
        except (OSError, asyncio.IncompleteReadError, asyncio.TimeoutError, ValueError):
            tally.dropped += 1
            connection = None
            continue
        tally.good[status] += 1
        tally.server_errors += status >= 500
        if not keep_alive:
            connection[1].close()
            connection = None
    if connection is not None:
        connection[1].close()


async def one_bad_request(port: int, kind: str, payload: bytes | None, tally: Tally) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        if kind == "slow headers":
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        elif kind == "slow body":
            writer.write(post("/v1/models/mnist-cnn/predict", port, b"x" * 1000)[:-990])
        elif kind == "abandoned upload":
            whole = upload("/v1/models/cifar10-cnn/predict", port, b"\x89PNG" * 5000, "a.png")
            writer.write(whole[:5000])
            await writer.drain()
            tally.bad[(kind, "left")] += 1
            return
        else:
            writer.write(payload)
        status, _, _ = await asyncio.wait_for(read_response(reader), READ_TIMEOUT_S)
        tally.bad[(kind, status)] += 1
        tally.server_errors += status >= 500
    except (OSError, asyncio.IncompleteReadError, asyncio.TimeoutError, ValueError):
        tally.bad[(kind, "closed")] += 1
    finally:
        writer.close()


async def bad_client(port: int, kinds: dict[str, bytes], stop: float, tally: Tally, seed: int):
    rng = random.Random(seed)
    names = [*kinds, "slow headers", "slow body", "abandoned upload"]
    while time.monotonic() < stop:
        kind = rng.choice(names)
        await one_bad_request(port, kind, kinds.get(kind), tally)


async def healthz_client(port: int, started: float, stop: float, tally: Tally) -> None:
    connection = None
    while time.monotonic() < stop:
        sent = time.perf_counter()
        try:
            if connection is None:
                connection = await asyncio.open_connection("127.0.0.1", port)
            status, _, _ = await exchange(connection, get("/healthz", port))
        except (OSError, asyncio.IncompleteReadError, asyncio.TimeoutError, ValueError):
            tally.dropped += 1
            connection = None
            continue
        tally.healthz.append((time.monotonic() - started, time.perf_counter() - sent))
        tally.server_errors += status >= 500
        await asyncio.sleep(HEALTHZ_EVERY_S)
    if connection is not None:
        connection[1].close()


async def soak(port: int, models: dict, seconds: float, tally: Tally) -> None:
    good, bad = good_requests(port, models), bad_requests(port)
    started = time.monotonic()
    stop = started + seconds
    await asyncio.gather(
        healthz_client(port, started, stop, tally),
        *(good_client(port, good, stop, tally, seed) for seed in range(GOOD_CLIENTS)),
        *(bad_client(port, bad, stop, tally, seed) for seed in range(BAD_CLIENTS)),
    )


# ---- the server -------------------------------------------------------------------------------


def resident_mb(pid: int) -> float:
    """The process's resident memory (VmRSS), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def train_tabular(folder: Path) -> list[Path]:
    """Quick runs of bike-sharing and admissions on generated data (a few seconds)."""
    for recipe in ("bike-sharing", "admissions"):
        command = ["run", recipe, "--quick", "--embedded", "--out", str(folder)]
        subprocess.run(
            [sys.executable, "-m", "dlnd", *command], check=True, stdout=subprocess.DEVNULL
        )
    return [Path(p) for p in sorted(glob.glob(str(folder / "*" / "*")))]


def model_cards(port: int) -> dict[str, dict]:
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=10) as answer:
        return {m["name"]: m for m in json.load(answer)["models"]}


def window_p99s(samples: list[tuple[float, float]], after: float) -> list[float]:
    windows: dict[int, list[float]] = {}
    for at, seconds in samples:
        if at >= after:
            windows.setdefault(int((at - after) // WINDOW_S), []).append(seconds)
    return [1000 * float(np.percentile(v, 99)) for _, v in sorted(windows.items()) if len(v) > 5]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=300, help="seconds of load (default 300)")
    parser.add_argument(
        "--warmup", type=float, help="seconds before memory and latency count (default 20%%)"
    )
    args = parser.parse_args()  # fmt: skip
    warmup = args.warmup if args.warmup is not None else 0.2 * args.duration
    from dlnd.serve.registry import demo_model_dirs

    with tempfile.TemporaryDirectory(prefix="dlnd-soak-") as scratch:
        runs = train_tabular(Path(scratch) / "runs")
        port, log = free_port(), Path(scratch) / "serve.log"
        command = [
            sys.executable, "-m", "dlnd", "serve", *map(str, demo_model_dirs()), *map(str, runs),
            "--port", str(port), "--header-timeout", str(HEADER_TIMEOUT_S),
            "--body-timeout", str(BODY_TIMEOUT_S),
        ]  # fmt: skip
        with log.open("w") as log_file:
            server = subprocess.Popen(command, stdout=log_file, stderr=subprocess.STDOUT)
        try:
            wait_until_up(port, server)
            models = model_cards(port)
            tally = Tally()
            run(soak(port, models, warmup, Tally()))  # warm-up: its outcomes are not kept
            rss_warm = resident_mb(server.pid)
            run(soak(port, models, args.duration - warmup, tally))
            rss_end = resident_mb(server.pid)
        finally:
            server.terminate()
            exit_status = server.wait(timeout=60)
        text = log.read_text()
    return report(args, tally, rss_warm, rss_end, exit_status, text)


def report(args, tally: Tally, rss_warm: float, rss_end: float, exit_status: int, log: str) -> int:
    latencies = [s for _, s in tally.healthz]
    p99 = 1000 * float(np.percentile(latencies, 99))
    worst_window = max(window_p99s(tally.healthz, 0.0), default=float("nan"))
    good_total = sum(tally.good.values())
    good_failed = sum(n for status, n in tally.good.items() if status != 200)
    memory_change = (rss_end - rss_warm) / rss_warm
    checks = {
        "no 5xx answer": tally.server_errors == 0,
        "no dropped connection (good clients)": tally.dropped == 0,
        "every good request answered 200": good_failed == 0,
        "/healthz p99 <= 50 ms": p99 <= 50,
        "memory within 10 % of warm-up": abs(memory_change) <= 0.10,
        "no traceback in the log": "Traceback" not in log,
        "exit status 0 after SIGTERM": exit_status == 0,
    }
    measured = args.duration - (args.warmup if args.warmup is not None else 0.2 * args.duration)
    print(
        f"dlnd serve soak: {GOOD_CLIENTS} good + {BAD_CLIENTS} bad + 1 /healthz clients, "
        f"{args.duration:g} s ({measured:g} s measured after warm-up); {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}, {time.strftime('%Y-%m-%d')}"
    )
    rate = good_total / measured
    print(f"good requests        {good_total:8d}  ({rate:.0f}/s), non-200: {good_failed}")
    print(f"dropped connections  {tally.dropped:8d}")
    bad_total = sum(tally.bad.values())
    print(f"bad requests         {bad_total:8d}  ({bad_total / measured:.0f}/s)")
    for (kind, status), count in sorted(tally.bad.items(), key=lambda item: str(item[0])):
        print(f"    {kind:22} {status!s:>7} {count:6d}")
    print(f"5xx answers          {tally.server_errors:8d}")
    print(
        f"/healthz             {len(latencies):8d} asked, "
        f"p50 {1000 * np.median(latencies):.1f} ms, "
        f"p99 {p99:.1f} ms, worst {WINDOW_S:g}-s window p99 {worst_window:.1f} ms, "
        f"max {1000 * max(latencies):.1f} ms"
    )
    print(
        f"server memory (RSS)  {rss_warm:.0f} MB after warm-up, {rss_end:.0f} MB at the end "
        f"({100 * memory_change:+.1f} %)"
    )
    print(f"access-log lines     {log.count(chr(10) + '{')}")
    for name, ok in checks.items():
        print(f"{'PASS' if ok else 'FAIL'}  {name}")
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
