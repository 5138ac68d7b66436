"""The ``nichetune`` command: one module per verb, each calling one library function."""

from __future__ import annotations

import argparse
import errno
import logging
import os
import sys

from .. import __version__, offline
from ..errors import NichetuneError
from ..hardware import allocator
from ..quiet import quiet_libraries
from . import (
    ab_cmd,
    ask_cmd,
    classify_cmd,
    compare_cmd,
    data_cmd,
    demo_cmd,
    eval_cmd,
    export_cmd,
    generate_cmd,
    index_cmd,
    keys_cmd,
    models_cmd,
    monitor_cmd,
    recommend_cmd,
    registry_cmd,
    retrain_cmd,
    review_cmd,
    serve_cmd,
    train_cmd,
    tune_cmd,
)

VERBS = (models_cmd, data_cmd, recommend_cmd, train_cmd, tune_cmd, eval_cmd, compare_cmd, review_cmd, export_cmd,
         registry_cmd, generate_cmd, classify_cmd, index_cmd, ask_cmd, keys_cmd,
         serve_cmd, monitor_cmd, ab_cmd, retrain_cmd, demo_cmd)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nichetune",
        description="Turn a general pretrained model into a domain specialist from a small dataset, "
        "and prove it is better. Runs offline by default.",
    )
    parser.add_argument("--version", action="version",
                        version=f"nichetune {__version__} (C allocator: {allocator()})")
    parser.add_argument("--online", action="store_true",
                        help="allow downloads from the Hugging Face hub (default: offline, HF_HUB_OFFLINE=1)")
    parser.add_argument("-v", "--verbose", action="store_true", help="show debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for verb in VERBS:
        verb.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    if argv is None:  # run as a program (not called from Python): under a non-fragmenting allocator where installed
        from .launch import relaunch_under_allocator

        relaunch_under_allocator()
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    # KEY=VALUE overrides may come after options (train RECIPE --fresh train.lr=1e-4)
    if extra and hasattr(args, "overrides") and all("=" in e and not e.startswith("-") for e in extra):
        args.overrides = [*args.overrides, *extra]
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if args.online:
        offline.go_online()
    else:
        offline.apply_default()
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    if args.verbose:  # asked for explicitly: wins over a quiet setting inherited from a parent process
        os.environ["TRANSFORMERS_VERBOSITY"] = "info"
    else:
        quiet_libraries()  # each command prints its own status; `-v` shows the libraries' reports again
    try:
        return int(args.func(args) or 0)
    except NichetuneError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        if exc.hint:
            print(f"  how to fix: {exc.hint}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except OSError as exc:  # disk full, permissions, a file where a folder should be: say which and how to fix
        where = f": {exc.filename}" if exc.filename else ""
        print(f"error: {exc.strerror or exc}{where}", file=sys.stderr)
        print(f"  how to fix: {_os_hint(exc)}", file=sys.stderr)
        return 1


def _os_hint(exc: OSError) -> str:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        return ("free disk space (df -h) or write to another folder; outputs are written under a temporary "
                "name and renamed when complete, so nothing half-written was left looking finished")
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return "check the permissions of that path (ls -l), or choose a folder you can write to"
    if exc.errno in (errno.ENOTDIR, errno.EISDIR, errno.EEXIST):
        return "a file stands where a folder is needed (or the reverse): choose another path"
    return "check the path and the disk, then run the command again"
