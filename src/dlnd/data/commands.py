"""``dlnd data list | fetch NAME | verify [NAME...]``: where each data set is, and is it intact."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from dlnd.data.catalog import DATASETS, Dataset, get_dataset
from dlnd.data.fetch import (
    candidate_folders,
    count_status,
    download_layout,
    file_status,
    find_present,
    resolve,
)
from dlnd.report import print_table


def _human_size(size: int | None) -> str:
    if size is None:
        return "?"
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000  # type: ignore[assignment]
    raise AssertionError("unreachable")


def cmd_list(args: argparse.Namespace) -> int:
    """One line per data set: name, size (of the copy found, else of a download), licence, where."""
    rows = []
    for dataset in DATASETS.values():
        found = find_present(dataset, args.data_dir)
        layout = found[1] if found else download_layout(dataset)
        where = f"{found[0]} ({found[1].label})" if found else "missing"
        rows.append([dataset.name, _human_size(layout.size), dataset.licence, where])
    print_table(["name", "size", "licence", "where"], rows)
    return 0


def cmd_fetch(args: argparse.Namespace) -> int:
    """Find (or download) a data set, verify it and print its folder."""
    print(resolve(args.name, args.data_dir))
    return 0


def verify_rows(dataset: Dataset, data_dir: str | Path | None) -> list[list[str]]:
    """``[data set, file, status, folder]`` rows for every file of ``dataset``."""
    present = find_present(dataset, data_dir)
    folders = candidate_folders(dataset, data_dir)
    folder = present[0] if present else next((f for f in folders if f.is_dir()), folders[0])
    rows = [
        [dataset.name, f.path, file_status(folder / f.path, f), str(folder)]
        for f in dataset.all_files
    ]
    for layout in dataset.layouts:
        for sub, expected in layout.image_counts.items():
            status, found = count_status(folder / sub, expected, layout.image_digests.get(sub))
            rows.append(
                [dataset.name, f"{sub}/ ({found} of {expected} files)", status, str(folder)]
            )
    return rows


def cmd_verify(args: argparse.Namespace) -> int:
    """Checksum every catalogue file present; exit status 1 if any is damaged."""
    names = args.names or list(DATASETS)
    rows = [row for name in names for row in verify_rows(get_dataset(name), args.data_dir)]
    print_table(["data set", "file", "status", "folder"], rows)
    bad = [row for row in rows if row[2] == "MISMATCH"]
    if bad:
        print(
            f"{len(bad)} file(s) do not match the catalogue; delete them and run "
            "'dlnd data fetch NAME'.",
            file=sys.stderr,
        )
        return 1
    return 0


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``dlnd data`` and its sub-commands to the command line."""
    data = subparsers.add_parser(
        "data",
        help="list, fetch and verify data sets",
        description="Data sets are looked for in --data-dir, then $DLND_DATA, then the user "
        "cache ($XDG_CACHE_HOME/dlnd or ~/.cache/dlnd), and downloaded there if missing "
        "(unless DLND_OFFLINE=1).",
    )
    sub = data.add_subparsers(dest="data_command", metavar="ACTION")
    data.set_defaults(func=lambda args: _usage(data))

    def add(
        name: str, func: Callable[[argparse.Namespace], int], help_text: str
    ) -> argparse.ArgumentParser:
        parser = sub.add_parser(
            name, help=help_text, description=help_text[0].upper() + help_text[1:] + "."
        )
        parser.add_argument(
            "--data-dir",
            help="data root (or data set folder) to look in first "
            "(default: $DLND_DATA, then the user cache)",
        )
        parser.set_defaults(func=func)
        return parser

    add("list", cmd_list, "show every data set with its size, licence and where it was found")
    fetch = add("fetch", cmd_fetch, "find or download a data set, verify it and print its folder")
    fetch.add_argument(
        "name", choices=list(DATASETS), metavar="NAME", help=f"data set name: {', '.join(DATASETS)}"
    )
    verify = add(
        "verify",
        cmd_verify,
        "checksum every file present, printing ok, MISMATCH or missing per file",
    )
    verify.add_argument(
        "names", nargs="*", metavar="NAME", help="data sets to check (default: all of them)"
    )
