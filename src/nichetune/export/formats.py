"""The forms a run is exported in, as a registry: how each is written to a folder and loaded back.

Every format writes a self-contained folder (weights, tokenizer, config) that ``load`` reads without the
run; parity (``export.parity``) and ``eval``'s latency both use exactly these two functions.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import NichetuneError
from ..hardware import release_memory
from ..methods.registry import METHODS
from ..models.heads import HEADS
from ..registries import add_unique
from ..run.loading import LoadedRun
from .merged import merged_model


def folder_mb(path: Path) -> float:
    path = Path(path)
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    return sum(p.stat().st_size for p in files) / 2**20


@dataclass
class Runner:
    """An export loaded for inference. ``logits(texts)`` for classifiers; ``model`` + ``tokenizer`` when it is
    a torch model (scoring and generation go through them)."""

    logits: Callable[[list[str]], np.ndarray] | None = None
    model: object = None
    tokenizer: object = None


@dataclass(frozen=True)
class ExportFormat:
    """One export form.

    Attributes:
        name: what ``nichetune export --to`` takes.
        note: one line for people.
        heads: the model heads it can hold.
        write: ``write(run, folder, max_length)`` writes the export's files into an empty ``folder``.
        load: ``load(folder, head, max_length) -> Runner``.
        needs_merge: built from the merged model, so only for methods that merge.
        same_as_tuned_for_whole_models: a full/freeze run already is this form (latency skips it).
        requires: importable modules it needs, and the extra that installs them.
        refuse: ``refuse(base architectures) -> reason or None`` for models the format cannot hold.
        slow_here: ``slow_here() -> reason or None`` where this machine lacks what the format's kernels need to
            be fast (latency measurement skips it; ``export`` warns).
    """

    name: str
    note: str
    heads: frozenset[str]
    write: Callable[[LoadedRun, Path, int], None]
    load: Callable[[Path, str, int], Runner]
    needs_merge: bool = True
    same_as_tuned_for_whole_models: bool = False
    requires: tuple[str, ...] = ()
    refuse: Callable[[list[str]], str | None] = field(default=lambda architectures: None)
    slow_here: Callable[[], str | None] = field(default=lambda: None)
    # logits computed the way a deployment runs them (e.g. in a process without torch), for parity
    isolated_logits: Callable[[Path, list[str]], np.ndarray] | None = None
    # greedy answers from the format's own runtime where installed (llama.cpp for GGUF), for parity
    native_check: Callable[[Path, list[str], int], dict] | None = None
    # the zero-shot prior's hooks run while the graph is traced, so the graph computes it (no file beside it)
    traces_prior: bool = False

    def applies_to(self, method_name: str, head: str, architectures: list[str]) -> bool:
        method = METHODS[method_name]
        if head not in self.heads or (self.needs_merge and not method.mergeable) or self.refuse(architectures):
            return False
        return not (self.same_as_tuned_for_whole_models and method.whole_model)

    def check(self, run: LoadedRun) -> None:
        """Raises NichetuneError with the reason when this run cannot be exported in this form."""
        import importlib.util

        method = METHODS[run.recipe.method.name]
        others = f"formats for it: {', '.join(formats_for(run.manifest))}"
        if self.needs_merge and not method.mergeable:
            raise NichetuneError(f"{method.name} cannot be exported as {self.name}: {method.cannot_merge}",
                                 hint="serve the run directory itself (base model + adapter)")
        if run.manifest.head not in self.heads:
            raise NichetuneError(f"{self.name} holds {' or '.join(sorted(self.heads))} models, and this run is a "
                                 f"{run.manifest.task} run", hint=others)
        missing = [m for m in self.requires if importlib.util.find_spec(m) is None]
        if missing:
            raise NichetuneError(f"{self.name} export needs {', '.join(missing)}",
                                 hint="pip install 'nichetune[export]'")
        reason = self.refuse(run.manifest.base_model.architectures)
        if reason:
            raise NichetuneError(f"{self.name}: {reason}", hint=others)


FORMATS: dict[str, ExportFormat] = {}


def register_format(fmt: ExportFormat) -> ExportFormat:
    return add_unique(FORMATS, fmt.name, fmt, "export format")


def formats_for(manifest) -> list[str]:
    """The formats a run (its ``RunManifest``) can be exported in."""
    return [f.name for f in FORMATS.values()
            if f.applies_to(manifest.method_name, manifest.head, manifest.base_model.architectures)]


# --- torch forms: safetensors folders transformers loads ---------------------------------------------------------

def torch_runner(model, tokenizer, head: str, max_length: int) -> Runner:
    """A torch model as a Runner; a classifier also gets ``logits(texts)``."""
    from ..tasks.scoring import classifier_logits

    model.eval()
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if HEADS[head].fresh:
        return Runner(logits=lambda texts: classifier_logits(model, tokenizer, texts, max_length=max_length),
                      model=model, tokenizer=tokenizer)
    return Runner(model=model, tokenizer=tokenizer)


def write_export(fmt: ExportFormat, run: LoadedRun, folder: Path) -> None:
    """``fmt``'s files for ``run`` in ``folder``, with the run's lexical stack beside them when it has one (whoever
    loads the export applies it), and its zero-shot prior where the format does not trace it into its graph
    (``models.similarity_prior``). The run's model is spent afterwards (merging folds the adapter in place)."""
    prior = getattr(run.model, "nichetune_prior", None)
    fmt.write(run, folder, run.recipe.model.max_length)
    if run.lexical is not None:
        run.lexical.save(folder)
    if prior is not None and not fmt.traces_prior:
        prior.save(folder)


def with_stack(runner: Runner, stack) -> Runner:
    """``runner`` whose logits go through a run's lexical stack (``tasks.lexical``), when there is one: what a
    stacked run's latency and quality are measured on."""
    if stack is None or runner.logits is None:
        return runner
    inner = runner.logits
    return Runner(logits=lambda texts, **kw: stack.apply(texts, inner(texts, **kw)), model=runner.model,
                  tokenizer=runner.tokenizer)


def _load_pretrained(dtype_name: str):
    def load(folder: Path, head: str, max_length: int) -> Runner:
        import torch
        from transformers import AutoTokenizer

        from ..models.similarity_prior import attach_saved

        model = HEADS[head].auto().from_pretrained(folder, dtype=getattr(torch, dtype_name), use_safetensors=True)
        return torch_runner(attach_saved(model, folder), AutoTokenizer.from_pretrained(folder), head, max_length)
    return load


def _write_merged(run: LoadedRun, folder: Path, max_length: int) -> None:
    merged_model(run).save_pretrained(folder, safe_serialization=True)
    run.tokenizer.save_pretrained(folder)


def _write_bf16(run: LoadedRun, folder: Path, max_length: int) -> None:
    import torch

    merged_model(run).to(torch.bfloat16).save_pretrained(folder, safe_serialization=True)
    run.tokenizer.save_pretrained(folder)


# Llama-style MLP output projections see activation outliers that int8 activations cannot hold; the
# output layer and a fresh classifier head stay in full precision too.
INT8_SKIP = ("down_proj", "lm_head", "classifier", "score")


def _write_int8(run: LoadedRun, folder: Path, max_length: int) -> None:
    """Linear layers with int8 weights (per channel) and int8 activations (per token, dynamic), through torchao
    as transformers integrates it: the folder is safetensors and loads back already quantized."""
    import torch
    from torchao.quantization import Int8DynamicActivationInt8WeightConfig
    from transformers import TorchAoConfig

    with tempfile.TemporaryDirectory() as tmp:
        merged_model(run).save_pretrained(tmp, safe_serialization=True)
        release_memory()  # the serialised weights' pages go back before the quantized model loads
        config = TorchAoConfig(Int8DynamicActivationInt8WeightConfig(), modules_to_not_convert=list(INT8_SKIP))
        quantized = HEADS[run.manifest.head].auto().from_pretrained(tmp, quantization_config=config,
                                                                     dtype=torch.float32)
        quantized.save_pretrained(folder, safe_serialization=True)
    run.tokenizer.save_pretrained(folder)


def _int8_slow_here() -> str | None:
    from ..hardware import cpu_has_int8_dot, pick_device

    if pick_device() != "cpu" or cpu_has_int8_dot():
        return None
    return ("this CPU has no int8 dot-product instructions (AVX512-VNNI, AVX-VNNI or AMX), so torchao's int8 "
            "matrix multiply runs a reference kernel, slower than fp32; for an encoder classifier onnx-int8 "
            "(onnxruntime's own kernels) is the int8 for it, for a decoder bf16 where native, else merged fp32")


TORCH_HEADS = frozenset(HEADS)
MERGED = register_format(ExportFormat("merged", "adapter folded into the weights (safetensors, fp32)", TORCH_HEADS,
                                      _write_merged, _load_pretrained("float32"),
                                      same_as_tuned_for_whole_models=True))
BF16 = register_format(ExportFormat("bf16", "merged, weights in bf16", TORCH_HEADS, _write_bf16,
                                    _load_pretrained("bfloat16")))
INT8 = register_format(ExportFormat("int8", "merged, linear layers int8 per channel with dynamic int8 activations "
                                    "(torchao)", TORCH_HEADS, _write_int8, _load_pretrained("float32"),
                                    requires=("torchao",), slow_here=_int8_slow_here))
