"""Turning a finished run into what is served: the adapter merged, bf16 weights, int8 linear layers.

Each form is an ``ExportFormat`` in ``FORMATS``; ``eval``'s latency section measures exactly these.
"""

from .formats import FORMATS, ExportFormat, export_model
from .merged import merge_run

__all__ = ["FORMATS", "ExportFormat", "export_model", "merge_run"]
