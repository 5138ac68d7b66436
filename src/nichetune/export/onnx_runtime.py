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
        self.truncation = self.settings.get("truncation", "head")
        if self.truncation != "head":  # cut by hand (head + tail, or windows), padded by hand
            self.tokenizer.no_truncation()
            self.tokenizer.no_padding()
        else:
            self.tokenizer.enable_truncation(self.settings["max_length"])
            self.tokenizer.enable_padding(pad_id=self.settings["pad_id"], pad_token=self.settings["pad_token"])

    @property
    def labels(self) -> list[str]:
        return self.settings["labels"]

    def logits(self, texts: list[str], batch_size: int = 32, max_padding: float | None = None):
        """(N, C) float64 logits; batches by length, cut where padding passes ``max_padding`` (see length_chunks).
        With ``windows`` truncation a text's logits are the mean over its windows, as ``classifier_logits``'s."""
        import numpy as np

        from ..length_chunks import length_chunks
        from ..truncation import clip, mean_by_owner, window_ids

        if self.truncation == "head":
            out = np.zeros((len(texts), len(self.labels)), dtype=np.float64)
            for idx in length_chunks([len(t) for t in texts], batch_size, max_padding):
                out[idx] = self.session.run(None, self._feed(self.tokenizer.encode_batch([texts[i] for i in idx])))[0]
            return out
        prefix, suffix = self.settings["special_ids"]
        bodies = [e.ids for e in self.tokenizer.encode_batch(texts, add_special_tokens=False)] if texts else []
        if self.truncation == "windows":
            ids, owner = window_ids(bodies, self.settings["max_length"], prefix, suffix)
        else:
            ids, owner = clip(bodies, self.settings["max_length"], prefix, suffix), list(range(len(texts)))
        out = np.zeros((len(ids), len(self.labels)), dtype=np.float64)
        for idx in length_chunks([len(row) for row in ids], batch_size, max_padding):
            out[idx] = self.session.run(None, self._padded([ids[i] for i in idx]))[0]
        return mean_by_owner(out, owner, len(texts))

    def _feed(self, encodings) -> dict:
        import numpy as np

        fields = {"input_ids": "ids", "attention_mask": "attention_mask", "token_type_ids": "type_ids"}
        return {name: np.array([getattr(e, fields[name]) for e in encodings], dtype=np.int64)
                for name in self.settings["inputs"]}

    def _padded(self, ids: list[list[int]]) -> dict:
        """Token id rows (special tokens included) padded by hand, as the torch classifier's batches are."""
        import numpy as np

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
