"""Run an ONNX export with onnxruntime and the ``tokenizers`` library only: no torch, no transformers.

This is what a deployment without torch runs; parity runs it in a separate process and checks that torch
was never imported there.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

SETTINGS = "onnx.json"  # written by the exporter: file, inputs, labels, pad id, max length


class OnnxClassifier:
    """``logits(texts) -> (N, C) float64`` from ``folder``'s ``model.onnx`` and ``tokenizer.json``."""

    def __init__(self, folder: str | Path, *, threads: int | None = None) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        folder = Path(folder)
        self.folder = folder
        self.settings = json.loads((folder / SETTINGS).read_text())
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        self.session = ort.InferenceSession(str(folder / self.settings["file"]), options,
                                            providers=["CPUExecutionProvider"])
        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.head_tail = self.settings.get("truncation", "head") == "head_tail"
        if self.head_tail:  # cut by hand (head + tail), padded by hand
            self.tokenizer.no_truncation()
            self.tokenizer.no_padding()
        else:
            self.tokenizer.enable_truncation(self.settings["max_length"])
            self.tokenizer.enable_padding(pad_id=self.settings["pad_id"], pad_token=self.settings["pad_token"])

    @property
    def labels(self) -> list[str]:
        return self.settings["labels"]

    def logits(self, texts: list[str], batch_size: int = 32, max_padding: float | None = None):
        """(N, C) float64 logits; batches by length, cut where padding passes ``max_padding`` (see length_chunks)."""
        import numpy as np

        from ..length_chunks import length_chunks

        out = np.zeros((len(texts), len(self.labels)), dtype=np.float64)
        for idx in length_chunks([len(t) for t in texts], batch_size, max_padding):
            chunk = [texts[i] for i in idx]
            feed = self._head_tail(chunk) if self.head_tail else self._feed(self.tokenizer.encode_batch(chunk))
            out[idx] = self.session.run(None, feed)[0]
        return out

    def _feed(self, encodings) -> dict:
        import numpy as np

        fields = {"input_ids": "ids", "attention_mask": "attention_mask", "token_type_ids": "type_ids"}
        return {name: np.array([getattr(e, fields[name]) for e in encodings], dtype=np.int64)
                for name in self.settings["inputs"]}

    def _head_tail(self, texts: list[str]) -> dict:
        """The batch as ``truncation.encode_ids`` reads it: the body's head and tail between the special tokens."""
        import numpy as np

        from ..truncation import clip

        prefix, suffix = self.settings["special_ids"]
        bodies = [e.ids for e in self.tokenizer.encode_batch(texts, add_special_tokens=False)]
        ids = clip(bodies, self.settings["max_length"], prefix, suffix)
        width = max(len(row) for row in ids)
        feed = {"input_ids": np.array([row + [self.settings["pad_id"]] * (width - len(row)) for row in ids]),
                "attention_mask": np.array([[1] * len(row) + [0] * (width - len(row)) for row in ids]),
                "token_type_ids": np.zeros((len(ids), width), dtype=np.int64)}
        return {name: feed[name].astype(np.int64) for name in self.settings["inputs"]}


def main() -> int:
    """stdin: ``{"folder": ..., "texts": [...]}``; stdout: ``{"logits": [[...]], "torch_imported": bool}``."""
    request = json.loads(sys.stdin.read())
    logits = OnnxClassifier(request["folder"]).logits(request["texts"])
    print(json.dumps({"logits": logits.tolist(), "torch_imported": "torch" in sys.modules}))
    return 0
