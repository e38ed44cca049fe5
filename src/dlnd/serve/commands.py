"""``dlnd export`` and ``dlnd serve``."""

from __future__ import annotations

import argparse
import gc
from pathlib import Path

from dlnd.errors import UserError
from dlnd.serve.extras import import_extra

MODEL_FORMATS = ("onnx", "torchscript")


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text}")
    return value


def non_negative_float(text: str) -> float:
    value = float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text}")
    return value


def register(subparsers) -> None:
    """Add ``export`` and ``serve`` to the ``dlnd`` command line."""
    p = subparsers.add_parser(
        "export",
        help="export a trained model to ONNX or TorchScript with a model card",
        description="Write MODEL as ONNX (default) or TorchScript plus model_card.json "
        "(classes, input, preprocessing, metrics, versions). MODEL is a training run, or "
        "pretrained:NAME for an ImageNet network (e.g. pretrained:efficientnet_lite0). The "
        "export is checked against PyTorch on random inputs.",
    )
    p.add_argument(
        "model", metavar="MODEL", help="a run folder (see 'dlnd runs') or pretrained:NAME"
    )
    p.add_argument("--format", choices=MODEL_FORMATS, default="onnx", help="default onnx")
    p.add_argument(
        "--out",
        type=Path,
        help="folder to write (default RUN_DIR/export-FORMAT; ./NAME-FORMAT for pretrained:NAME)",
    )
    p.add_argument(
        "--name", help="model name in the card (default: the recipe's or network's name)"
    )
    p.set_defaults(func=cmd_export)

    p = subparsers.add_parser(
        "serve",
        help="serve models over HTTP: REST API and a web page (demo models by default)",
        description="Serve trained models with a REST API (/v1/models, /docs) and a web page "
        "at /. Give training runs or exported folders; with none, the demo models that ship "
        "with dlnd are served.",
    )
    p.add_argument(
        "model_dirs",
        nargs="*",
        type=Path,
        metavar="RUN_DIR",
        help="training runs or exported folders (default: the demo models)",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="default 8000")
    p.add_argument(
        "--max-batch",
        type=positive_int,
        default=64,
        help="most requests answered by one forward pass (default 64)",
    )
    p.add_argument(
        "--max-wait-ms",
        type=non_negative_float,
        default=2.0,
        help="how long a request may wait for others to batch with (default 2)",
    )
    p.add_argument(
        "--max-body-bytes",
        type=positive_int,
        default=8 * 1024 * 1024,
        help="largest request body accepted (default 8 MiB)",
    )
    p.add_argument(
        "--threads", type=positive_int, default=1, help="threads per forward pass (default 1)"
    )
    p.set_defaults(func=cmd_serve)


def cmd_export(args: argparse.Namespace) -> int:
    from dlnd.pretrained.registry import pretrained_name
    from dlnd.serve.export import export_pretrained, export_run

    backbone = pretrained_name(args.model)
    if backbone is not None:
        out = export_pretrained(backbone, args.format, args.out, name=args.name)
    else:
        out = export_run(Path(args.model), args.format, args.out, name=args.name)
    print(f"Exported {args.format} model and model card to {out}")
    return 0


def quiet_garbage_collector() -> None:
    """Keep Python's cyclic garbage collector out of the request path.

    Each JSON request allocates thousands of small objects, which triggers collections;
    a full collection also walks every object of the loaded libraries (PyTorch, ONNX Runtime,
    FastAPI): pauses of tens of milliseconds that showed up as a p99 of ~155 ms under load.
    Freezing what start-up allocated moves it out of the collector's sight, and a larger
    first-generation threshold makes collections rarer (p99 33 ms in benchmarks/serve_load.py).
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(100_000, 50, 50)


def cmd_serve(args: argparse.Namespace) -> int:
    for module in ("fastapi", "uvicorn", "onnxruntime", "python_multipart"):
        import_extra(module)
    import uvicorn

    from dlnd.serve.app import create_app

    for path in args.model_dirs:
        if not path.is_dir():
            raise UserError(f"{path} is not a folder; give a run directory or an export folder.")
    app = create_app(
        args.model_dirs,
        max_batch=args.max_batch,
        max_wait_ms=args.max_wait_ms,
        threads=args.threads,
        max_body_bytes=args.max_body_bytes,
    )
    names = ", ".join(model.name for model in app.state.registry)
    print(f"Serving {names} on http://{args.host}:{args.port}/ (Ctrl-C stops)")
    quiet_garbage_collector()
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False)
    return 0
