"""Load test of ``dlnd serve`` against a one-request-one-forward Flask app, same model.

Both servers run on 127.0.0.1 in their own process and answer the same requests: a real
MNIST test digit as a JSON pixel array, top-5 classes back; or, for a sentence classifier
(``--model`` an exported sentiment-rnn or sentiment-cnn), a real MR review sentence as
``{"text": ...}`` (generated reviews without the data), its classes back. A fixed number of
requests is sent by 64 concurrent clients (keep-alive HTTP/1.1 connections, one asyncio
loop, request bytes prepared in advance so the client costs little CPU). Reported per
server: requests/s, p50/p99 latency, errors, and the accuracy of the answers; then the
ratio of throughputs.

    python benchmarks/serve_load.py                      # the demo MNIST model
    python benchmarks/serve_load.py --model DIR --requests 20000
    dlnd export runs/sentiment-rnn/STAMP --out /tmp/sentiment-rnn
    python benchmarks/serve_load.py --model /tmp/sentiment-rnn       # MR sentences

The Flask baseline is the usual course deployment: Flask's own threaded server, JSON in,
one ONNX Runtime forward pass per request (default session settings), JSON out; for text,
the sentence is split by the model's vocabulary (``dlnd.text``) as ``dlnd serve`` does.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DEMO_MNIST = ROOT / "src" / "dlnd" / "serve" / "demo_models" / "mnist-cnn"


# ---- the baseline server ----------------------------------------------------------------


def run_flask_server(model_dir: Path, port: int) -> None:
    """A minimal course-style deployment: one forward pass per request."""
    import onnxruntime as ort
    from flask import Flask, jsonify, request

    card = json.loads((model_dir / "model_card.json").read_text())
    session = ort.InferenceSession(
        str(model_dir / card["file"]), providers=["CPUExecutionProvider"]
    )
    input_name = session.get_inputs()[0].name
    app = Flask(__name__)
    if card["task"] == "text-classification":
        from dlnd.text import load_vocabulary

        vocab = load_vocabulary(model_dir / card["vocabulary"])

    def forward(body: dict) -> np.ndarray:
        if card["task"] == "text-classification":
            ids = vocab.encode(body["text"])[None]
            return session.run(None, {"ids": ids, "lengths": np.array([ids.shape[1]])})[0][0]
        pixels = np.asarray(body["pixels"], dtype=np.float32)
        return session.run(None, {input_name: pixels[None, None]})[0][0]

    @app.post("/predict")
    def predict():
        logits = forward(request.get_json())
        probabilities = np.exp(logits - logits.max())
        probabilities /= probabilities.sum()
        best = np.argsort(-probabilities)[:5]
        return jsonify(
            predictions=[
                {
                    "label": card["classes"][i],
                    "index": int(i),
                    "probability": float(probabilities[i]),
                }
                for i in best
            ]
        )

    app.run(host="127.0.0.1", port=port, threaded=True)


# ---- the load generator -------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def http_post(path: str, port: int, body: bytes) -> bytes:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes, bool]:
    """(status, body, whether the server keeps the connection open)."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    version, status = lines[0].split(" ", 2)[:2]
    fields = (line.partition(":") for line in lines[1:] if line)
    headers = {key.strip().lower(): value.strip() for key, _, value in fields}
    body = await reader.readexactly(int(headers.get("content-length", 0)))
    keep_alive = version == "HTTP/1.1" and headers.get("connection", "").lower() != "close"
    return int(status), body, keep_alive


async def client(
    port: int,
    requests: list[tuple[bytes, int]],
    jobs: asyncio.Queue,
    latencies: list[float],
    outcome: dict[str, int],
) -> None:
    """Send jobs (indices into ``requests``) one after another on one connection."""
    connection = None
    while True:
        try:
            index = jobs.get_nowait()
        except asyncio.QueueEmpty:
            break
        payload, label = requests[index]
        started = time.perf_counter()
        try:
            if connection is None:
                connection = await asyncio.open_connection("127.0.0.1", port)
            reader, writer = connection
            writer.write(payload)
            status, body, keep_alive = await read_response(reader)
        except (OSError, asyncio.IncompleteReadError, ValueError):
            outcome["errors"] += 1
            connection = None
            continue
        latencies.append(time.perf_counter() - started)
        if status != 200:
            outcome["errors"] += 1
        elif json.loads(body)["predictions"][0]["index"] == label:
            outcome["correct"] += 1
        if not keep_alive:
            writer.close()
            connection = None
    if connection is not None:
        connection[1].close()


async def load(
    port: int, requests: list[tuple[bytes, int]], count: int, concurrency: int
) -> dict[str, float]:
    jobs: asyncio.Queue = asyncio.Queue()
    for i in range(count):
        jobs.put_nowait(i % len(requests))
    latencies: list[float] = []
    outcome = {"errors": 0, "correct": 0}
    started = time.perf_counter()
    await asyncio.gather(
        *(client(port, requests, jobs, latencies, outcome) for _ in range(concurrency))
    )
    elapsed = time.perf_counter() - started
    answered = len(latencies) - outcome["errors"]
    return {
        "requests": count,
        "seconds": elapsed,
        "rps": count / elapsed,
        "p50_ms": 1000 * float(np.percentile(latencies, 50)),
        "p99_ms": 1000 * float(np.percentile(latencies, 99)),
        "errors": outcome["errors"] + count - len(latencies),
        "accuracy": outcome["correct"] / max(answered, 1),
    }


def run(coroutine):
    """Run the load generator on uvloop when it is installed (a cheaper client)."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coroutine)
    return uvloop.run(coroutine)


def wait_until_up(port: int, process: subprocess.Popen, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("the server exited; run its command alone to see why")
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise RuntimeError("the server did not start in time")


def measure(
    command: list[str],
    port: int,
    path: str,
    examples: list[tuple[dict, int]],
    args: argparse.Namespace,
) -> dict[str, float]:
    """Start a server, warm it up, send ``args.requests`` requests (the JSON bodies of
    ``examples``, with their labels), stop it."""
    requests = [
        (http_post(path, port, json.dumps(body).encode()), label) for body, label in examples
    ]
    # The servers' logs are dropped: an unread pipe would fill up and stall the server.
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until_up(port, process)
        run(load(port, requests, args.warmup, args.concurrency))
        return run(load(port, requests, args.requests, args.concurrency))
    finally:
        process.terminate()
        process.wait(timeout=30)


def mnist_digits(data_dir: Path, count: int) -> list[tuple[dict, int]]:
    """Real MNIST test digits as (request body with 28x28 pixel rows in [0, 1], label)."""
    from dlnd.data.readers import read_idx

    images = read_idx(data_dir / "mnist" / "t10k-images-idx3-ubyte.gz")[-count:]
    labels = read_idx(data_dir / "mnist" / "t10k-labels-idx1-ubyte.gz")[-count:]
    return [
        ({"pixels": np.round(image / 255.0, 4).tolist(), "top_k": 5}, int(label))
        for image, label in zip(images, labels, strict=True)
    ]


def review_sentences(data_dir: Path | None, count: int) -> list[tuple[dict, int]]:
    """``count`` MR sentences, both classes alternating (generated reviews without
    ``data_dir``), as (request body, label)."""
    from dlnd.sequence.reviews import load_reviews

    reviews = load_reviews(data_dir, embedded=data_dir is None, seed=0)
    positive = np.flatnonzero(reviews.labels == 1)[: count // 2]
    negative = np.flatnonzero(reviews.labels == 0)[: count - len(positive)]
    chosen = np.concatenate([positive, negative])
    return [({"text": reviews.sentences[i]}, int(reviews.labels[i])) for i in chosen]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=DEMO_MNIST, help="exported model folder")
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=os.environ.get("DLND_DATA"),
        help="folder with mnist/t10k-*.gz (default $DLND_DATA)",
    )
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--warmup", type=int, default=1_000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--max-batch", type=int, default=64)
    parser.add_argument("--max-wait-ms", type=float, default=2.0)
    parser.add_argument("--flask-server", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.flask_server:
        run_flask_server(args.model, args.flask_server)
        return
    card = json.loads((args.model / "model_card.json").read_text())
    name = card["name"]
    if card["task"] == "text-classification":
        examples = review_sentences(args.data_dir, 500)
    elif args.data_dir is None:
        parser.error("give --data-dir (or set DLND_DATA): the folder with the MNIST files")
    else:
        examples = mnist_digits(args.data_dir, 500)
    dlnd_port, flask_port = free_port(), free_port()
    dlnd_command = [
        sys.executable,
        "-m",
        "dlnd",
        "serve",
        str(args.model),
        "--port",
        str(dlnd_port),
        "--max-batch",
        str(args.max_batch),
        "--max-wait-ms",
        str(args.max_wait_ms),
    ]
    flask_command = [
        sys.executable,
        __file__,
        "--model",
        str(args.model),
        "--flask-server",
        str(flask_port),
    ]
    servers = {
        "dlnd serve (micro-batching)": measure(
            dlnd_command, dlnd_port, f"/v1/models/{name}/predict", examples, args
        ),
        "Flask, one forward per request": measure(
            flask_command, flask_port, "/predict", examples, args
        ),
    }
    print(
        f"{args.requests} requests, {args.concurrency} concurrent clients, model {name}; "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"{time.strftime('%Y-%m-%d')}"
    )
    print(f"{'server':32} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7} {'accuracy':>9}")
    for name, row in servers.items():
        print(
            f"{name:32} {row['rps']:8.0f} {row['p50_ms']:8.1f} {row['p99_ms']:8.1f} "
            f"{row['errors']:7d} {row['accuracy']:9.4f}"
        )
    rows = list(servers.values())
    print(f"throughput ratio dlnd / Flask: {rows[0]['rps'] / rows[1]['rps']:.1f}x")


if __name__ == "__main__":
    main()
