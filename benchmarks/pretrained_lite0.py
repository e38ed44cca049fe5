"""EfficientNet-Lite0, the offline ImageNet backbone: load time, CPU latency, accuracy.

    DLND_DATA=../shared/data python benchmarks/pretrained_lite0.py [--threads N]

Measured in one process with an empty user cache (a temporary ``XDG_CACHE_HOME``):

- load, first time: hash the package's ``.pth``, unpickle it (tensors only), map the keys,
  write safetensors to the cache, build the model;
- load, cached: read the safetensors and build the model (median of 5);
- latency: one 224x224 image, forward pass only, and file -> top-5 (decode, resize, forward),
  the median of 30 after 3 warm-up runs; batches of 8 and 32, per image;
- ImageNet top-1/top-5 of "ant"/"bee" on the 153 ants/bees validation photos (needs
  ``$DLND_DATA``), prepared as ``dlnd predict`` prepares them.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path


def median_seconds(action, repeats: int, warmup: int = 0) -> float:
    for _ in range(warmup):
        action()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def accuracy(backbone, data: Path) -> tuple[float, float, int]:
    """(top-1, top-5, photos) of ImageNet's "ant"/"bee" on the ants/bees validation photos."""
    from dlnd.pretrained import classifier_info
    from dlnd.vision.predict import classify_files

    val = data / "hymenoptera" / "val"
    files = [(str(p), "ant") for p in sorted((val / "ants").iterdir())]
    files += [(str(p), "bee") for p in sorted((val / "bees").iterdir())]
    results = classify_files(backbone, classifier_info(backbone), [f for f, _ in files], k=5)
    pairs = list(zip(results, files, strict=True))
    top1 = sum(r.top[0][0] == label for r, (_, label) in pairs) / len(pairs)
    top5 = sum(label in [name for name, _ in r.top] for r, (_, label) in pairs) / len(pairs)
    return top1, top5, len(pairs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, help="torch threads (default: all cores)")
    args = parser.parse_args()
    os.environ["XDG_CACHE_HOME"] = tempfile.mkdtemp(prefix="dlnd-bench-cache-")
    import numpy as np
    import torch
    from PIL import Image

    from dlnd.pretrained import OFFLINE_DEFAULT, classifier_info, load_backbone
    from dlnd.vision.predict import classify_files

    if args.threads:
        torch.set_num_threads(args.threads)
    rows = []
    start = time.perf_counter()
    backbone = load_backbone(OFFLINE_DEFAULT)
    rows.append(("load, first time (convert to safetensors)", time.perf_counter() - start, "s"))
    cached = median_seconds(lambda: load_backbone(OFFLINE_DEFAULT), repeats=5)
    rows.append(("load, from the safetensors cache", cached, "s"))

    one = torch.rand(1, 3, 224, 224)
    with torch.no_grad():
        forward = median_seconds(lambda: backbone(one), repeats=30, warmup=3)
        rows.append(("forward, 1 image", forward * 1000, "ms"))
        for size in (8, 32):
            batch = torch.rand(size, 3, 224, 224)
            per_image = median_seconds(lambda b=batch: backbone(b), repeats=3, warmup=1) / size
            rows.append((f"forward, batch of {size}, per image", per_image * 1000, "ms"))
    picture = Path(os.environ["XDG_CACHE_HOME"]) / "photo.jpg"
    pixels = np.random.default_rng(0).integers(0, 256, (375, 500, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(picture)
    info = classifier_info(backbone)
    to_top5 = median_seconds(
        lambda: classify_files(backbone, info, [str(picture)], k=5), repeats=30, warmup=3
    )
    rows.append(("500x375 JPEG file -> top-5", to_top5 * 1000, "ms"))
    if os.environ.get("DLND_DATA"):
        top1, top5, photos = accuracy(backbone, Path(os.environ["DLND_DATA"]))
        rows.append((f"ants/bees val ({photos} photos): top-1", 100 * top1, "%"))
        rows.append((f"ants/bees val ({photos} photos): top-5", 100 * top5, "%"))

    print(
        f"EfficientNet-Lite0 on {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} CPUs, torch {torch.__version__}, {torch.get_num_threads()} threads"
    )
    print("| measurement | value |\n| --- | ---: |")
    for name, value, unit in rows:
        print(f"| {name} | {value:.3g} {unit} |")


if __name__ == "__main__":
    main()
