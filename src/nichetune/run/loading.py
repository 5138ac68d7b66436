"""Reading a finished run back: its typed manifest and recipe, and its model (base + adapter, or whole)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import NichetuneError
from ..hashing import verify_manifest
from ..methods.registry import METHODS
from ..methods.storage import load_adapted
from ..models.embedded import EMBEDDED
from ..models.heads import HEADS
from ..models.resolve import ResolvedModel, resolve_model
from ..tasks.lexical import load_stack
from .manifest import RunManifest, read_manifest
from .paths import RunPaths


@dataclass(frozen=True)
class LoadedRun:
    """A finished run's model (eval mode), its tokenizer (saved with the run), manifest, recipe and paths."""

    model: Any
    tokenizer: Any
    manifest: RunManifest
    recipe: Any  # config.recipe.Recipe
    paths: RunPaths
    lexical: Any = None  # tasks.lexical.LexicalStack of a run trained with train.lexical: stack


def read_run(run_dir: str | Path) -> tuple[RunManifest, object]:
    """The typed manifest and the typed recipe of a finished run.

    Raises:
        NichetuneError: ``run_dir`` holds no finished run, or its manifest is damaged or newer than this code.
    """
    from ..config.recipe import load_recipe

    paths = RunPaths(run_dir)
    if not paths.finished:
        raise NichetuneError(f"{paths.root} is not a finished nichetune run (no {paths.manifest.name})",
                             hint="train one with `nichetune train RECIPE.yaml`; an interrupted run resumes "
                                  "when trained again with the same recipe")
    return read_manifest(paths.manifest), load_recipe(paths.recipe)


def base_model(manifest: RunManifest, recipe) -> ResolvedModel:
    """The run's base model: an embedded one by name, else the folder it was trained from (an absolute path)."""
    ref, path = manifest.base_model.reference, Path(manifest.base_model.path)
    return resolve_model(ref if ref in EMBEDDED or not path.is_dir() else path,
                         allow_pickle=recipe.model.allow_pickle, trust_remote_code=recipe.model.trust_remote_code)


def load_run(run_dir: str | Path, *, dtype=None, weights: str | Path | None = None) -> LoadedRun:
    """Load a finished run's model (base + adapter, or the whole model) and its tokenizer.

    ``weights`` names the weights folder when it is not the run's own (a registry keeps a run's record and its
    weights side by side). The weights are checked against their sha256 manifest (sizes) and refused if any file
    is a pickle.

    Example:
        >>> run = load_run("runs/bbc-news-lora")  # doctest: +SKIP
        >>> run.model, run.tokenizer, run.manifest.result.test
    """
    paths = RunPaths(run_dir)
    manifest, recipe = read_run(paths.root)
    method = METHODS[recipe.method.name]
    folder = Path(weights) if weights is not None else paths.weights(method.whole_model)
    tokenizer = checked_weights(folder)
    model = load_adapted(lambda: run_base(manifest, recipe), recipe.method, manifest.head, folder)
    if dtype is not None:
        model = model.to(dtype)
    return LoadedRun(model.eval(), tokenizer, manifest, recipe, paths, load_stack(folder))


def checked_weights(folder: Path):
    """Check a run's weights folder (no pickle, safetensors headers, sizes against its manifest) and return the
    tokenizer saved with it (the training template)."""
    import transformers

    from ..models.safety import check_safetensors, refuse_pickle

    refuse_pickle(folder, "the run's weights")  # never rest safety on a loader's default
    for file in folder.glob("*.safetensors"):
        check_safetensors(file)
    problems = verify_manifest(folder, deep=False)
    if problems:
        raise NichetuneError(f"{folder} does not match its manifest: {'; '.join(problems[:3])}",
                             hint="the run's weights were changed or are incomplete; retrain with --fresh")
    tokenizer = transformers.AutoTokenizer.from_pretrained(folder)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def run_base(manifest: RunManifest, recipe):
    """The fresh base model a run's adapter loads on top of (fp32, with the run's head and labels)."""
    from ..models.task_model import load_base

    return load_base(base_model(manifest, recipe), manifest.head, manifest.labels,
                     allow_pickle=recipe.model.allow_pickle, trust_remote_code=recipe.model.trust_remote_code)


def is_adapter_run(folder: str | Path) -> bool:
    """A finished run whose weights load on top of a base model (not a whole saved model)."""
    paths = RunPaths(Path(folder).expanduser())
    return paths.finished and paths.weights(False).is_dir()


def resolve_run(folder: str | Path) -> ResolvedModel:
    """An adapter run as a model reference: its base model's config with the run's head."""
    paths = RunPaths(Path(folder).expanduser().resolve())
    manifest, recipe = read_run(paths.root)
    base = base_model(manifest, recipe)
    suffix = HEADS[manifest.head].architecture_suffix
    stems = [re.sub(r"(ForCausalLM|ForSequenceClassification|ForMaskedLM|Model)$", "", a) for a in base.architectures]
    config = {**base.config, "architectures": [stem + suffix for stem in stems]}
    return ResolvedModel(reference=str(paths.root), path=paths.weights(False), source="run", config=config)
