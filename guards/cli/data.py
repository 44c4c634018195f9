"""`guards data download [--dest DIR] [--tasks ...] [--mirror URL]`: the evaluation data, verified, on demand."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from guards.core import exitcodes
from guards.run.progress import progress_bars
from guards.tasks.download import DATASETS, MANIFEST_NAME, SOURCES, datasets_for, download, user_data_dir


def cmd_data(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="guards data", description="manage the evaluation data")
    sub = parser.add_subparsers(dest="action", required=True)
    get = sub.add_parser("download", help="download every data set (or --tasks) and check it against the manifest")
    get.add_argument("--dest", type=Path, help=f"target folder (default: {user_data_dir()}, which runs find "
                                               "without configuration; GUARDS_DATA_DIR still wins at run time)")
    get.add_argument("--tasks", help=f"comma list of data sets (default all: "
                                     f"{', '.join(d for d in DATASETS if d != 'personas')})")
    get.add_argument("--mirror", default=os.environ.get("GUARDS_DATA_MIRROR"),
                     help="a mirror in the final layout: <URL>/<path> for each file (GUARDS_DATA_MIRROR)")
    get.add_argument("--quiet", action="store_true")
    sub.add_parser("sources", help="where each data set comes from (pinned upstream URLs)")
    args = parser.parse_args(argv)
    if args.action == "sources":
        for name, sources in SOURCES.items():
            for source in sources:
                print(f"{name:<14} {source.path:<52} {source.url}")
        return exitcodes.PASS
    dest = args.dest or user_data_dir()
    chosen = datasets_for([t.strip() for t in args.tasks.split(",") if t.strip()] if args.tasks else None)
    with progress_bars("guards data", not args.quiet) as bars:
        written = download(dest, chosen, mirror=args.mirror, progress=bars("download") if bars else None)
    print(f"guards data: {len(written)} file(s) written, all verified (sha256) -> {dest} ({MANIFEST_NAME})")
    if args.dest and not os.environ.get("GUARDS_DATA_DIR"):
        print(f"guards data: runs read it with GUARDS_DATA_DIR={dest} (or [run] data_dir)", file=sys.stderr)
    return exitcodes.PASS
