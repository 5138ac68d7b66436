"""Every export format, registered (torch forms in ``formats``, ONNX forms in ``onnx``)."""

from . import onnx  # noqa: F401  (registers onnx, onnx-int8)
from .formats import FORMATS, ExportFormat, Runner, formats_for

__all__ = ["FORMATS", "ExportFormat", "Runner", "formats_for"]
