"""Every export format, registered (torch forms in ``formats``, ONNX forms in ``onnx``)."""

from . import gguf_export, onnx  # noqa: F401  (they register gguf, onnx, onnx-int8)
from .formats import FORMATS, ExportFormat, Runner, formats_for

__all__ = ["FORMATS", "ExportFormat", "Runner", "formats_for"]
