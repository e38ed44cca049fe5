"""Style transfer with EfficientNet-Lite0, with and without the softmax smoothing, side by side.

    DLND_DATA=../shared/data python benchmarks/style_smoothing.py [--style hockney.jpg] [--out DIR]

Runs the ``style-transfer`` recipe twice with its defaults (Lite0, 400 pixels, L-BFGS, 300
steps): once with the default smoothing (2) and once with ``--smoothing 0`` (raw features; the
style weight is rescaled so that the photo starts with the same balance between content and
style). Writes ``DIR/smoothing_<style>.png`` (photo, artwork, without, with) and prints each
run's time and final content loss (the same measure for both: the raw features of one layer;
the style losses are not comparable, one is on smoothed features).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--content", default="octopus.jpg", help="a file of images/style")
    parser.add_argument("--style", default="hockney.jpg", help="a file of images/style")
    parser.add_argument("--size", type=int, default=400)
    parser.add_argument("--out", default="runs/style-smoothing")
    parser.add_argument("--threads", type=int, help="torch threads (default: all cores)")
    args = parser.parse_args()
    import torch

    from dlnd.data import resolve
    from dlnd.launch import run_recipe
    from dlnd.pretrained.style import load_picture, pictures_figure

    if args.threads:
        torch.set_num_threads(args.threads)
    folder = resolve("style-images")
    content, style = folder / args.content, folder / args.style
    common = {
        "content": str(content),
        "style": str(style),
        "size": args.size,
        "backbone": "efficientnet_lite0",
        "out": args.out,
    }
    pictures = {
        "photo": load_picture(content, args.size),
        "artwork": load_picture(style, args.size),
    }
    print("| smoothing | style weight | seconds | CPU seconds | final content loss |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for label, smoothing in (("without smoothing", 0.0), ("with smoothing (2)", 2.0)):
        wall, cpu = time.perf_counter(), time.process_time()
        final = run_recipe("style-transfer", smoothing=smoothing, **common)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        run_dir = Path(final["run_dir"])
        pictures[label] = load_picture(run_dir / "stylised.png", args.size)
        weight = json.loads((run_dir / "checkpoint.json").read_text())["info"]["style_weight"]
        print(
            f"| {smoothing:g} | {weight:.3g} | {wall:.0f} | {cpu:.0f} | "
            f"{final['metrics']['content_loss']:.4g} |"
        )
    figure = pictures_figure(pictures, "EfficientNet-Lite0: raw features vs softmax-smoothed")
    path = Path(args.out) / f"smoothing_{Path(args.style).stem}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110, bbox_inches="tight")
    print(f"\nfigure: {path}")


if __name__ == "__main__":
    main()
