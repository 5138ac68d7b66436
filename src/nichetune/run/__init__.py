"""The run directory, the unit of record: its layout, manifest, metrics log and loading, in one place.

Training writes a run through here; evaluation, export and serving read it through here.
"""

from .directory import MANIFEST, RECIPE, load_run, merge_run, read_run, weights_folder
from .metrics_log import METRICS_FILE, read_metrics

__all__ = ["MANIFEST", "METRICS_FILE", "RECIPE", "load_run", "merge_run", "read_metrics", "read_run", "weights_folder"]
