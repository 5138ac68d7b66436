"""Turn a model reference (embedded name, local folder, run directory, hub id) into local files."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ..errors import ModelNotAvailableError
from ..offline import is_offline
from .embedded import EMBEDDED
from .safety import check_model_folder

Source = Literal["embedded", "local", "run", "hub"]
_HUB_PATTERNS = ["*.json", "*.safetensors", "*.txt", "*.model", "*.jinja", "*.tiktoken"]


@dataclass(frozen=True)
class ResolvedModel:
    """A model reference resolved to a checked local folder."""

    reference: str
    path: Path
    source: Source
    config: dict

    @property
    def architectures(self) -> list[str]:
        return list(self.config.get("architectures") or [])

    @property
    def is_causal_lm(self) -> bool:
        """A decoder with a language-model head (``*ForCausalLM``, ``GPT2LMHeadModel``, ...), by its config."""
        from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

        heads = set(MODEL_FOR_CAUSAL_LM_MAPPING_NAMES.values())
        return any(a.endswith("ForCausalLM") or a in heads for a in self.architectures)

    @property
    def is_sequence_classifier(self) -> bool:
        return any(a.endswith("ForSequenceClassification") for a in self.architectures)


def _looks_like_path(ref: str) -> bool:
    return ref.startswith((".", "/", "~")) or os.sep in ref and not _looks_like_hub_id(ref)


def _looks_like_hub_id(ref: str) -> bool:
    parts = ref.split("/")
    return len(parts) == 2 and all(parts) and not ref.startswith((".", "/", "~"))


def _run_model_dir(folder: Path) -> Path | None:
    """A nichetune run directory keeps its weights in ``model/``."""
    inner = folder / "model"
    if not (folder / "config.json").exists() and (inner / "config.json").is_file():
        return inner
    return None


def _refuse_adapter_run(folder: Path) -> None:
    """A run whose weights are an adapter is no plain model folder: it loads through ``nichetune.run``."""
    if (folder / "adapter").is_dir() and (folder / "manifest.json").is_file() and not (folder / "config.json").exists():
        raise ModelNotAvailableError(
            f"{folder} is a nichetune run whose weights are an adapter on its base model, not a model folder",
            hint="use it where a run is accepted (nichetune generate/classify --model, nichetune.load_run), "
                 "or merge it first (nichetune merge RUN OUT)")


def _from_hub(ref: str) -> Path:
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    offline = is_offline()
    try:
        return Path(snapshot_download(ref, allow_patterns=_HUB_PATTERNS, local_files_only=offline))
    except LocalEntryNotFoundError:
        raise ModelNotAvailableError(
            f"{ref!r} is not in the local Hugging Face cache and nichetune is offline",
            hint=f"on a machine with internet run `nichetune --online models prepare {ref}` "
            "(or set NICHETUNE_ONLINE=1), or pass the path of a local model folder. "
            f"Embedded models that always work offline: {', '.join(EMBEDDED)}",
        ) from None
    except Exception as exc:  # repository not found, network refused, ...
        raise ModelNotAvailableError(
            f"could not fetch {ref!r} from the hub: {exc}",
            hint="check the model id, your network, and HF_TOKEN for gated models",
        ) from None


def resolve_model(
    reference: str | os.PathLike,
    *,
    allow_pickle: bool = False,
    trust_remote_code: bool = False,
    prepare: bool = True,
) -> ResolvedModel:
    """Resolve ``reference`` to a checked local folder.

    Args:
        reference: an embedded name (``smollm2-135m-instruct``), a local HF folder, a
            nichetune run directory (its ``model/``, or its ``adapter/`` over the base model),
            or a hub id (``org/name``).
        allow_pickle: accept folders whose weights are pickle-only.
        trust_remote_code: accept configs that ask for custom code.
        prepare: convert embedded models that are not prepared yet (else raise).

    Raises:
        ModelNotAvailableError, UnsafeModelError, AssetMissingError.
    """
    ref = str(reference)
    if ref in EMBEDDED:
        from .prepare import prepare_model, prepared_path

        spec = EMBEDDED[ref]
        if spec.needs_conversion and not prepare and not prepared_path(ref).is_dir():
            raise ModelNotAvailableError(
                f"{ref} is not prepared yet", hint=f"run `nichetune models prepare {ref}`"
            )
        path, source = prepare_model(ref, deep_verify=False), "embedded"
    elif Path(ref).expanduser().is_dir():
        path = Path(ref).expanduser().resolve()
        _refuse_adapter_run(path)
        inner = _run_model_dir(path)
        path, source = (inner, "run") if inner else (path, "local")
    elif _looks_like_path(ref) or not _looks_like_hub_id(ref):
        raise ModelNotAvailableError(
            f"model {ref!r} is neither an embedded model, an existing folder, nor a hub id (org/name)",
            hint=f"embedded models: {', '.join(EMBEDDED)}; or give the path of a folder with config.json",
        )
    else:
        path, source = _from_hub(ref), "hub"
    check_model_folder(path, allow_pickle=allow_pickle, trust_remote_code=trust_remote_code)
    config = json.loads((path / "config.json").read_text())
    return ResolvedModel(reference=ref, path=path, source=source, config=config)
