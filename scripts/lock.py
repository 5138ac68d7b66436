"""Turn pip's resolver report (``pip install --dry-run --report``) into a hashed lock file.

    python scripts/lock.py REPORT.json OUT.lock --exclude torch --exclude nichetune

Every resolved distribution becomes ``name==version --hash=sha256:...``; editable and local-folder
installs (the project itself) are left out, since they have no single file to hash. ``make lock``
runs this; ``make setup`` installs the result with ``--require-hashes --no-deps``.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from pathlib import Path


def lock_lines(report: dict, exclude: set[str]) -> list[str]:
    lines = []
    for item in report["install"]:
        name = item["metadata"]["name"]
        if name.lower().replace("_", "-") in exclude:
            continue
        archive = item["download_info"].get("archive_info")
        if archive is None:  # an editable or local folder: no file to hash
            continue
        digest = archive.get("hashes", {}).get("sha256") or archive["hash"].removeprefix("sha256=")
        lines.append(f"{name}=={item['metadata']['version']} \\\n    --hash=sha256:{digest}")
    return sorted(lines, key=str.lower)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("report", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--exclude", action="append", default=[], help="a distribution to leave out")
    parser.add_argument("--what", default="nichetune's dependencies")
    args = parser.parse_args(argv)
    report = json.loads(args.report.read_text())
    exclude = {e.lower().replace("_", "-") for e in args.exclude}
    lines = lock_lines(report, exclude)
    env = report.get("environment", {})
    header = [
        f"# {args.what}: the exact versions that passed, with sha256 of each file (written by `make lock`).",
        f"# Resolved for CPython {env.get('python_full_version', platform.python_version())} on "
        f"{env.get('sys_platform', sys.platform)} {env.get('platform_machine', platform.machine())}; "
        "installed with pip --require-hashes --no-deps.",
        "# Upgrade on purpose: `make test-latest`, then `make lock` and commit this file with the result.",
    ]
    args.out.write_text("\n".join(header + lines) + "\n")
    print(f"{args.out}: {len(lines)} pinned distributions")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
