"""The chatbot on the Seinfeld scripts: reply perplexity against both baselines, a few real
exchanges, and reply latency in ``dlnd chat``'s code path and at the server.

One ``chatbot`` run with its full settings trains, on the same (line, reply) pairs and
vocabulary, the attention model and the two baselines (the same decoder without attention,
and a language model of replies that ignores the line). Then the script:

1. prints the three validation perplexities and how much lower the model's is;
2. prints greedy replies to a few held-out lines beside the script's reply;
3. times greedy replies to 200 held-out lines: PyTorch (what ``dlnd chat`` runs) and the
   exported ONNX graphs (what the server runs), p50/p99 in one process, and
   ``POST /reply`` through the HTTP stack (FastAPI test client, no network).

    DLND_DATA=../shared/data python benchmarks/chatbot.py [--out runs/chatbot-bench]
        [--threads N] [--epochs 5] [--max-pairs 0] [--quick] [--run RUN_DIR]

``--run`` measures a chatbot run that has finished (perplexities from its ``final.json``)
instead of training one.

``--quick`` checks the script on the embedded data in a minute. Every number printed is
from this run; record them in benchmarks/RESULTS.md with the machine and the date.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np

LATENCY_LINES = 200
SHOWN = 10


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/chatbot-bench", help="folder of the run")
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="torch threads")
    parser.add_argument("--epochs", type=int, default=None, help="default: the recipe's")
    parser.add_argument("--max-pairs", type=int, default=0, help="first N pairs only (0: all)")
    parser.add_argument("--quick", action="store_true", help="quick settings, embedded data")
    parser.add_argument(
        "--run", default=None, help="a finished chatbot run folder to measure instead of training"
    )
    return parser.parse_args()


def percentiles(times_ms: list[float]) -> str:
    p50, p99 = np.percentile(times_ms, [50, 99])
    return f"p50 {p50:6.1f} ms   p99 {p99:6.1f} ms"


def timed(function, items) -> list[float]:
    times = []
    for item in items:
        start = time.perf_counter()
        function(item)
        times.append(1000 * (time.perf_counter() - start))
    return times


def main() -> None:
    args = parse_args()
    import torch
    from fastapi.testclient import TestClient

    from dlnd.launch import run_recipe
    from dlnd.sequence.chatbot import ChatBot, prepare
    from dlnd.serve.app import create_app
    from dlnd.serve.chat import OnnxChatModel
    from dlnd.serve.chat_export import export_chat_run

    torch.set_num_threads(args.threads)
    options = {"out": args.out, "max_pairs": args.max_pairs}
    if args.epochs:
        options["epochs"] = args.epochs
    if args.quick:
        options.update(quick=True, embedded=True)
    if args.run:
        run_dir = Path(args.run)
        if not (run_dir / "final.json").is_file():
            raise SystemExit(f"--run {run_dir}: no final.json there; give a finished chatbot run.")
        final = json.loads((run_dir / "final.json").read_text())
        trained_s = final["wall_time_s"]
    else:
        started = time.time()
        final = run_recipe("chatbot", **options)
        trained_s, run_dir = time.time() - started, Path(final["run_dir"])
    metrics = final["metrics"]
    config = json.loads((run_dir / "config.json").read_text())

    print(f"\nchatbot, {run_dir} ({trained_s:.0f} s for the three models)")
    print(f"{'model':<44} {'val perplexity':>15}")
    label = "GRU encoder-decoder, Luong attention" + (" + copy" if config.get("copy") else "")
    print(f"{label:<44} {metrics['val_perplexity']:15.2f}")
    baselines = (
        ("plain", "the same without attention"),
        ("language_model", "language model of replies (ignores the line)"),
    )
    for key, label in baselines:
        cut = metrics[f"perplexity_cut_vs_{key}_pct"]
        print(f"{label:<44} {metrics[f'{key}_val_perplexity']:15.2f}   attention: {cut:+.1f} %")

    bot = ChatBot.from_run(run_dir)
    _, _, held_out = prepare({**config, "data_dir": config.get("data_dir")})
    lines = [line for line, _ in held_out.texts]
    print("\nexchanges on held-out lines (greedy):")
    for line, reply in held_out.texts[:: max(len(held_out) // SHOWN, 1)][:SHOWN]:
        print(f"  line:   {line}\n  bot:    {bot.reply(line).text}\n  script: {reply}\n")

    export = export_chat_run(run_dir, run_dir / "export-onnx")
    card = json.loads((export / "model_card.json").read_text())
    onnx = OnnxChatModel(export / card["file"], export / card["decoder_step"]["file"],
                         card["end_id"], card["never_written"])  # fmt: skip
    sample = lines[:LATENCY_LINES]
    print(f"reply latency, {len(sample)} held-out lines, greedy, {args.threads} thread(s):")
    print(f"  PyTorch (dlnd chat)      {percentiles(timed(bot.reply, sample))}")
    onnx_reply = lambda line: onnx.reply(bot.line_ids(line), bot.max_words)  # noqa: E731
    print(f"  ONNX Runtime (server)    {percentiles(timed(onnx_reply, sample))}")
    with TestClient(create_app([export], access_log=False)) as client:
        url = f"/v1/models/{card['name']}/reply"
        post = lambda line: client.post(url, json={"message": line}).raise_for_status()  # noqa: E731
        print(f"  POST /reply (HTTP stack) {percentiles(timed(post, sample))}")
    print(f"\n{platform.platform()}, {platform.processor() or 'cpu'}, torch {torch.__version__}, "
          f"{time.strftime('%Y-%m-%d')}")  # fmt: skip


if __name__ == "__main__":
    main()
