"""Decoding the offline CIFAR-10 JPEG archive, and loading the decoded cache, in one process.

Steps, each timed once per repeat (the median is shown): reading the 60,000 JPEGs out of the
gzip tarball; decoding them with 1 worker process (the baseline) and with 2; writing the
``.npy`` cache; loading it back with ``load_cifar10`` (a warm cache, as every run after the
first sees it).

    DLND_DATA=../shared/data python benchmarks/data_cifar10.py [--repeats R]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path


def timed(fn, repeats: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per step")
    args = parser.parse_args()
    os.environ["XDG_CACHE_HOME"] = tempfile.mkdtemp(prefix="dlnd-bench-")
    import numpy as np
    import PIL

    from dlnd.data import readers, resolve

    archive = resolve("cifar10") / "cifar10-jpg.tar.gz"
    rows = []
    t, _ = timed(lambda: readers._jpeg_entries(archive), args.repeats)
    rows.append(("un-gzip + read 60,000 JPEGs from the tar", t, None))
    base, arrays = timed(lambda: readers.read_cifar_jpeg_archive(archive, workers=1), args.repeats)
    rows.append(("read + decode, 1 worker (baseline)", base, 1.0))
    t, _ = timed(lambda: readers.read_cifar_jpeg_archive(archive, workers=2), args.repeats)
    rows.append(("read + decode, 2 workers", t, t / base))
    cache = Path(os.environ["XDG_CACHE_HOME"]) / "bench"
    t, _ = timed(lambda: readers._save_arrays(cache, arrays), args.repeats)
    rows.append(("write the .npy cache (184 MB)", t, t / base))
    readers.load_cifar10()  # fills the real cache
    t, split = timed(readers.load_cifar10, args.repeats)
    assert split.train_images.shape == (50000, 32, 32, 3)
    rows.append(("load_cifar10 from the cache", t, t / base))

    print(
        f"# CIFAR-10 JPEG archive, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"NumPy {np.__version__}, Pillow {PIL.__version__}, median of {args.repeats}"
    )
    print(f"| {'step':<42} | {'seconds':>8} | {'vs baseline':>11} |")
    print(f"| {'-' * 42} | {'-' * 7}: | {'-' * 10}: |")
    for name, seconds, ratio in rows:
        shown = "" if ratio is None else f"{ratio:.3f}"
        print(f"| {name:<42} | {seconds:>8.2f} | {shown:>11} |")


if __name__ == "__main__":
    main()
