"""``dlnd export`` and ``dlnd serve``."""

from __future__ import annotations

import argparse
import gc
import os
from pathlib import Path

from dlnd.config import non_negative_float, positive_float, positive_int
from dlnd.errors import UserError
from dlnd.serve import defaults
from dlnd.serve.extras import import_extra

MODEL_FORMATS = ("onnx", "torchscript")


API_KEY_VARIABLE = "DLND_API_KEY"


def register(subparsers) -> None:
    """Add ``export`` and ``serve`` to the ``dlnd`` command line."""
    p = subparsers.add_parser(
        "export",
        help="export a trained model to ONNX or TorchScript with a model card",
        description="Write MODEL as ONNX (default) or TorchScript plus model_card.json "
        "(classes, input, preprocessing, metrics, versions). MODEL is a training run, or "
        "pretrained:NAME for an ImageNet network (e.g. pretrained:efficientnet_lite0). The "
        "export is checked against PyTorch on random inputs. A GAN run exports its generator "
        "(latent vectors -> images); a style-transfer run its artwork and settings (served "
        "with PyTorch).",
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
    p.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default 127.0.0.1, this machine only); any other "
        "address needs an API key or --no-auth",
    )
    p.add_argument("--port", type=int, default=8000, help="default 8000")
    p.add_argument(
        "--api-key",
        help=f"key every API request must present (Authorization: Bearer KEY); "
        f"better given as ${API_KEY_VARIABLE}, which other users cannot see in 'ps'",
    )
    p.add_argument(
        "--no-auth",
        action="store_true",
        help="serve beyond this machine without an API key (anyone who can reach the port "
        "can use the models)",
    )
    p.add_argument(
        "--allow-host",
        action="append",
        default=[],
        metavar="NAME",
        help="a host name clients may use besides 127.0.0.1 and localhost (repeatable)",
    )
    p.add_argument(
        "--max-batch",
        type=positive_int,
        default=defaults.MAX_BATCH,
        help=f"most requests answered by one forward pass (default {defaults.MAX_BATCH})",
    )
    p.add_argument(
        "--max-wait-ms",
        type=non_negative_float,
        default=defaults.MAX_WAIT_MS,
        help="how long a request may wait for others to batch with "
        f"(default {defaults.MAX_WAIT_MS:g})",
    )
    p.add_argument(
        "--max-body-bytes",
        type=positive_int,
        default=defaults.MAX_BODY_BYTES,
        help=f"largest request body accepted (default {defaults.MAX_BODY_BYTES:,})",
    )
    p.add_argument(
        "--threads",
        type=positive_int,
        default=defaults.FORWARD_THREADS,
        help=f"threads per forward pass (default {defaults.FORWARD_THREADS})",
    )
    p.add_argument(
        "--parse-threads",
        type=positive_int,
        default=defaults.PARSE_THREADS,
        help=f"requests parsed or images decoded at once (default {defaults.PARSE_THREADS})",
    )
    p.add_argument(
        "--header-timeout",
        type=positive_float,
        default=defaults.HEADER_TIMEOUT_S,
        metavar="SECONDS",
        help="time a client has to send a request's headers "
        f"(default {defaults.HEADER_TIMEOUT_S:g})",
    )
    p.add_argument(
        "--body-timeout",
        type=positive_float,
        default=defaults.BODY_TIMEOUT_S,
        metavar="SECONDS",
        help=f"time a client has to send a request's body (default {defaults.BODY_TIMEOUT_S:g})",
    )
    p.add_argument(
        "--no-access-log",
        dest="access_log",
        action="store_false",
        help="do not write one JSON line per request to stderr",
    )
    p.set_defaults(func=cmd_serve)


def cmd_export(args: argparse.Namespace) -> int:
    from dlnd.pretrained.registry import pretrained_name
    from dlnd.serve.export import export_pretrained
    from dlnd.serve.exporting import export_run

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


def access_rules(args: argparse.Namespace) -> tuple[str | None, list[str] | None]:
    """``(api_key, allowed_hosts)`` for the server: a key (flag or environment) is needed
    beyond loopback unless ``--no-auth``; bound to loopback, only loopback names (and
    ``--allow-host`` names) are answered."""
    from dlnd.serve.security import LOOPBACK_NAMES, is_loopback

    api_key = args.api_key or os.environ.get(API_KEY_VARIABLE) or None
    if api_key and args.no_auth:
        raise UserError(
            f"--no-auth contradicts the API key given (--api-key or ${API_KEY_VARIABLE})."
        )
    loopback = is_loopback(args.host)
    if not loopback and not api_key and not args.no_auth:
        raise UserError(
            f"Listening on {args.host} lets other machines reach the models; give an API key "
            f"(${API_KEY_VARIABLE} or --api-key KEY), or --no-auth to serve without one."
        )
    if loopback:
        return api_key, [*LOOPBACK_NAMES, *args.allow_host]
    return api_key, (args.allow_host or None)


def cmd_serve(args: argparse.Namespace) -> int:
    for module in ("fastapi", "uvicorn", "onnxruntime", "python_multipart", "fastapi_offline"):
        import_extra(module)
    from dlnd.serve.app import create_app
    from dlnd.serve.observe import start_access_log
    from dlnd.serve.server import bind, serve

    for path in args.model_dirs:
        if not path.is_dir():
            raise UserError(f"{path} is not a folder; give a run directory or an export folder.")
    api_key, allowed_hosts = access_rules(args)
    sock = bind(args.host, args.port)
    try:
        app = create_app(
            args.model_dirs,
            max_batch=args.max_batch,
            max_wait_ms=args.max_wait_ms,
            threads=args.threads,
            parse_threads=args.parse_threads,
            max_body_bytes=args.max_body_bytes,
            body_timeout_s=args.body_timeout,
            allowed_hosts=allowed_hosts,
            api_key=api_key,
            access_log=args.access_log,
        )
    except BaseException:
        sock.close()
        raise
    names = ", ".join(model.name for model in app.state.registry)
    print(f"Serving {names} on http://{args.host}:{args.port}/ (Ctrl-C stops)", flush=True)
    if api_key:
        print("The API needs the key: 'Authorization: Bearer KEY' on every request.", flush=True)
    elif args.no_auth:
        print(f"No API key: anyone who can reach port {args.port} can use these models.")
    quiet_garbage_collector()
    access_log = start_access_log() if args.access_log else None
    try:
        stopped_by = serve(app, sock, header_timeout_s=args.header_timeout)
    finally:
        if access_log is not None:
            access_log.stop()
    if stopped_by:
        print(f"Stopped by {stopped_by}; every request in flight was answered.", flush=True)
    return 0
