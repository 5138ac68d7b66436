"""The peer side of benchmarks/monitor.py: Evidently's DataDriftPreset on the same reference and the same daily
windows of features, run in its own virtual environment (Evidently pulls pandas, pyarrow and more; nichetune
does not depend on it). Prints JSON: time, peak memory, and the days it declared drifted.

    /tmp/evv/bin/python benchmarks/monitor_evidently_peer.py FEATURES_DIR
"""

import json
import sys
import time
from pathlib import Path

import pandas as pd
from evidently import Report
from evidently.presets import DataDriftPreset


def _peak_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _drifted(metric: dict) -> bool:
    """Evidently's own verdict for a column: a p-value under its threshold, or a distance over it."""
    value, config = metric["value"], metric["config"]
    if value is None:
        return False
    return value < config["threshold"] if "p_value" in config["method"] else value >= config["threshold"]


def main() -> None:
    folder = Path(sys.argv[1])
    start = time.perf_counter()
    reference = pd.read_json(folder / "reference.jsonl", lines=True)
    current = pd.read_json(folder / "current.jsonl", lines=True)
    read_s = time.perf_counter() - start
    start = time.perf_counter()
    drifted, columns_drifted = [], {}
    for day, window in current.groupby("day"):
        result = Report([DataDriftPreset()]).run(window.drop(columns=["day"]), reference).dict()
        metrics = result["metrics"]
        columns = [m["config"]["column"] for m in metrics if m["config"]["type"].endswith("ValueDrift")
                   and _drifted(m)]
        columns_drifted[int(day)] = columns
        if columns:
            drifted.append(int(day))
    print(json.dumps({"read_s": round(read_s, 1), "report_s": round(time.perf_counter() - start, 1),
                      "days_with_drifted_columns": drifted, "columns": columns_drifted,
                      "peak_rss_mb": round(_peak_mb())}))


if __name__ == "__main__":
    main()
