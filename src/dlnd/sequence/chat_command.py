"""``dlnd chat RUN_DIR``: talk to a trained chatbot in the terminal.

Each line typed (or piped in) gets a reply; an empty line or end of input stops. The last
turns of the conversation go with each message as its history (the model reads them if it
was trained with ``--context-turns``). ``--message TEXT`` answers one message and exits.
Every reply is followed by its time in milliseconds when ``--timing`` is on, and the
session's p50/p99 latency is printed at the end.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from dlnd.config import any_int, non_negative_int, positive_float

# PyTorch and the model are imported inside the handler, so that `dlnd --help` stays fast.

PROMPT = "you> "
HISTORY_TURNS = 6  # turns kept as the conversation's history


def cmd_chat(args: argparse.Namespace) -> int:
    """Answer ``--message`` once, or every line of standard input in turn."""
    import numpy as np

    from dlnd.sequence.chatbot import ChatBot

    bot = ChatBot.from_run(Path(args.run_dir))
    interactive = args.message is None and sys.stdin.isatty()
    history: list[str] = []
    times: list[float] = []

    def answer(message: str) -> None:
        start = time.perf_counter()
        reply = bot.reply(
            message, history, temperature=args.temperature, top_k=args.top_k or None,
            seed=args.seed + len(times),
        )  # fmt: skip
        times.append(1000 * (time.perf_counter() - start))
        timing = f"  ({times[-1]:.1f} ms)" if args.timing else ""
        print(f"bot> {reply.text}{timing}", flush=True)
        history.extend([message, reply.text])
        del history[:-HISTORY_TURNS]

    if args.message is not None:
        answer(args.message)
        return 0
    if interactive:
        print("Type a line and press Enter; an empty line ends the chat.", flush=True)
    while True:
        if interactive:
            print(PROMPT, end="", flush=True)
        line = sys.stdin.readline()
        if not line.strip():
            break
        answer(line.strip())
    if times and args.timing:
        p50, p99 = np.percentile(times, [50, 99])
        print(f"{len(times)} replies: p50 {p50:.1f} ms, p99 {p99:.1f} ms", flush=True)
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``dlnd chat`` to the ``dlnd`` command line."""
    p = subparsers.add_parser(
        "chat",
        help="talk to a trained chatbot (type or pipe lines; --message for one reply)",
        description="Reply to each line typed or piped in with a trained chatbot run "
        "(recipe chatbot); an empty line or end of input stops. Greedy replies by default; "
        "--temperature above 0 samples them (the same --seed, the same replies).",
    )
    p.add_argument("run_dir", metavar="RUN_DIR", help="run directory of a chatbot run")
    p.add_argument("--message", help="answer this one message and exit")
    p.add_argument(
        "--temperature", type=positive_float, default=0.0, help="sample at this temperature "
        "(default: greedy, the likeliest word each step)",
    )  # fmt: skip
    p.add_argument("--top-k", type=non_negative_int, default=0, help="sample from the k likeliest")
    p.add_argument("--seed", type=any_int, default=0, help="random seed of sampled replies")
    p.add_argument("--timing", action="store_true", help="print each reply's latency")
    p.set_defaults(func=cmd_chat)
