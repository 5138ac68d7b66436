"""The run directory, the unit of record: its layout, manifest, metrics log and loading, in one place.

Training writes a run through here; evaluation, export and serving read it through here.
"""

from .loading import LoadedRun, load_run, read_run
from .manifest import SCHEMA_VERSION, RunManifest, read_manifest
from .metrics_log import read_metrics
from .paths import RunPaths

__all__ = ["SCHEMA_VERSION", "LoadedRun", "RunManifest", "RunPaths", "load_run", "read_manifest", "read_metrics",
           "read_run"]
