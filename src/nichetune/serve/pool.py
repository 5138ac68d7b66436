"""The served models: loaded on first use, several PEFT adapters on one base, least-recently-used eviction.

Adapters of the same kind on the same base (same head and label count) share one ``PeftModel``: the first loads
the base, the others are ``load_adapter``-ed into it and picked per request with ``set_adapter``. A group's lock
is held for the whole forward pass or generation, so switching adapters never races a running request.

Memory is accounted in bytes of parameters and buffers. Before a load, idle entries are evicted oldest first
until the new one fits the budget; an entry in use is never evicted. Lock order: the load lock, then a group
lock, then the state lock; the state lock is never held while waiting for anything else.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import NichetuneError
from .targets import Target


class PoolFull(NichetuneError):
    """The model does not fit the memory budget even with every idle model evicted."""


def model_bytes(model) -> int:
    """Bytes held by a torch model's parameters and buffers, each storage counted once."""
    seen, total = set(), 0
    for t in [*model.parameters(), *model.buffers()]:
        ptr = t.untyped_storage().data_ptr()
        if ptr not in seen:
            seen.add(ptr)
            total += t.untyped_storage().nbytes()
    return total


# measured on MiniLM with drug reviews on 2 cores: eight texts of mixed lengths padded together cost 36% more per
# text than one at a time, eight of similar lengths 6% less; so a micro-batch is cut where padding passes 25%
MAX_PADDING = 0.25
WEIGHT_SUFFIXES = (".safetensors", ".onnx", ".gguf")


def weight_file_bytes(folder: Path) -> int:
    """Bytes of the weight files in ``folder`` (tokenizer and config files left out)."""
    return sum(p.stat().st_size for p in Path(folder).glob("*") if p.suffix in WEIGHT_SUFFIXES) if Path(
        folder).is_dir() else 0


@dataclass
class Group:
    """Models that share one set of base weights (a PeftModel with several adapters), or a model alone."""

    key: tuple
    model: Any
    shared: bool
    lock: threading.Lock = field(default_factory=threading.Lock)
    members: set[str] = field(default_factory=set)
    bytes: int = 0  # the shared weights; each member adds its own

    def activate(self, name: str) -> None:
        if self.shared and self.model.active_adapter != name:
            self.model.set_adapter(name)


@dataclass
class Loaded:
    """A served model ready to run: a torch ``model`` + ``tokenizer``, or only ``logits`` (an ONNX export)."""

    target: Target
    group: Group
    model: Any
    tokenizer: Any
    logits: Callable | None = None
    runtime: str = "torch"  # or "onnx" (onnxruntime, compiled at load), or what an export runs on
    bytes: int = 0  # what this model adds to its group's shared weights
    last_used: float = 0.0
    in_use: int = 0
    lexical: Any = None  # tasks.lexical.LexicalStack when the weights carry one (train.lexical: stack)


def _peft_type(folder: Path) -> str:
    import json

    return json.loads((folder / "adapter_config.json").read_text())["peft_type"]


class ModelPool:
    """Loads, shares and evicts the served models.

    Args:
        targets: what may be served, by name.
        budget_bytes: the most parameter memory to hold at once.
        dtype_for: ``dtype_for(target)`` the torch dtype to run a target in.
    """

    def __init__(self, targets: list[Target], budget_bytes: int, dtype_for: Callable[[Target], Any],
                 runtime: str = "torch", max_padding: float | None = None):
        self.targets = {t.name: t for t in targets}
        self.budget = budget_bytes
        self.dtype_for = dtype_for
        self.runtime = runtime
        self.max_padding = max_padding
        self.loaded: dict[str, Loaded] = {}
        self.groups: dict[tuple, Group] = {}
        self.evictions = 0
        self.loads = 0
        self._state = threading.Lock()
        self._loading = threading.Lock()

    # --- state ----------------------------------------------------------------------------------------------

    def used_bytes(self) -> int:
        with self._state:
            return self._used()

    def _used(self) -> int:
        groups = {id(e.group): e.group.bytes for e in self.loaded.values()}
        return sum(e.bytes for e in self.loaded.values()) + sum(groups.values())

    def status(self) -> list[dict]:
        with self._state:
            return [{"model": name, "loaded": name in self.loaded,
                     "bytes": self.loaded[name].bytes + self.loaded[name].group.bytes if name in self.loaded
                     else 0,
                     "in_use": self.loaded[name].in_use if name in self.loaded else 0,
                     "runtime": self.loaded[name].runtime if name in self.loaded else None,
                     "shares_base_with": sorted(self.loaded[name].group.members - {name}) if name in self.loaded
                     else []} for name in self.targets]

    # --- use ------------------------------------------------------------------------------------------------

    @contextmanager
    def use(self, name: str) -> Iterator[Loaded]:
        """The loaded model ``name``, its group locked and its adapter active, for one request (blocking)."""
        entry = self._checkout(name)
        try:
            with entry.group.lock:
                entry.group.activate(name)
                yield entry
        finally:
            with self._state:
                entry.in_use -= 1
                entry.last_used = time.monotonic()

    def _checkout(self, name: str) -> Loaded:
        while True:
            with self._state:
                entry = self.loaded.get(name)
                if entry is not None:
                    entry.in_use += 1
                    entry.last_used = time.monotonic()
                    return entry
            self.load(name)

    def load(self, name: str) -> Loaded:
        """Load ``name`` now if it is not loaded (evicting idle models to fit)."""
        with self._loading:
            with self._state:
                if name in self.loaded:
                    return self.loaded[name]
            target = self.targets[name]
            self._make_room(self._estimate(target), keep=name)
            entry = self._load(target)
            with self._state:
                self.loaded[name] = entry
                self.loads += 1
            return entry

    def unload(self, name: str) -> bool:
        """Evict ``name`` (waits for its running requests); False when it was not loaded."""
        with self._loading:
            with self._state:
                entry = self.loaded.pop(name, None)
            if entry is None:
                return False
            self._drop(entry)
            return True

    # --- loading and eviction ---------------------------------------------------------------------------------

    def _group_key(self, target: Target) -> tuple:
        if target.is_peft_adapter:
            from ..run.loading import read_run

            manifest, _ = read_run(target.record)
            return ("peft", manifest.base_model.path, target.head, len(target.labels), _peft_type(target.weights),
                    str(self.dtype_for(target)))
        return ("own", target.name)

    def _estimate(self, target: Target) -> int:
        """Bytes a load will add, from the weight files (and the base's, when its group is not loaded yet)."""
        size = weight_file_bytes(target.weights)
        key = self._group_key(target)
        if key[0] == "peft" and key not in self.groups:
            size += weight_file_bytes(Path(key[1]))
        return size

    def _make_room(self, need: int, keep: str) -> None:
        if need > self.budget:
            raise PoolFull(f"{keep} needs about {need / 2**20:.0f} MiB, more than the whole memory budget "
                           f"({self.budget / 2**20:.0f} MiB)", hint="raise --memory-budget-mb")
        while True:
            with self._state:
                used = self._used()
                if used + need <= self.budget:
                    return
                idle = [e for n, e in self.loaded.items() if e.in_use == 0 and n != keep]
                if not idle:
                    raise PoolFull(f"{keep} needs about {need / 2**20:.0f} MiB and every loaded model is busy "
                                   f"({used / 2**20:.0f} of {self.budget / 2**20:.0f} MiB held)",
                                   hint="retry shortly, or raise --memory-budget-mb")
                victim = min(idle, key=lambda e: e.last_used)
                del self.loaded[victim.target.name]
                self.evictions += 1
            self._drop(victim)

    def _drop(self, entry: Loaded) -> None:
        group, name = entry.group, entry.target.name
        with group.lock:
            group.members.discard(name)
            if group.shared and group.members:
                group.model.delete_adapter(name)
                with self._state:  # the base now holds only the others' adapters: recount what it alone keeps
                    others = sum(self.loaded[m].bytes for m in group.members if m in self.loaded)
                    group.bytes = model_bytes(group.model) - others
            else:
                self.groups.pop(group.key, None)
                group.model = None

    def _load(self, target: Target) -> Loaded:
        from ..tasks.lexical import load_stack

        key = self._group_key(target)
        loaded = self._load_shared(target, key) if key[0] == "peft" else self._load_own(target, key)
        loaded.lexical = load_stack(target.weights) if target.weights.is_dir() else None
        return loaded

    def _load_shared(self, target: Target, key: tuple) -> Loaded:
        """An adapter into its base's PeftModel (the base loads with the first adapter)."""
        from .loaders import load_shared_adapter

        group = self.groups.get(key)
        if group is None:
            model, tokenizer = load_shared_adapter(target, None, self.dtype_for(target))
            group = Group(key, model, shared=True, bytes=model_bytes(model))
            added = 0
        else:
            with group.lock:
                before = model_bytes(group.model)
                model, tokenizer = load_shared_adapter(target, group.model, self.dtype_for(target))
                added = model_bytes(model) - before
        group.members.add(target.name)
        self.groups[key] = group
        return Loaded(target, group, model, tokenizer, bytes=added)

    def _load_own(self, target: Target, key: tuple) -> Loaded:
        """A model alone: an export, a whole-model run or a plain model; a classifier compiled to ONNX if asked.

        Raises:
            NichetuneError: ``runtime="onnx"`` and the ONNX compile failed or did not match torch.
        """
        from .loaders import load_export, load_model, load_own_run, onnx_classifier

        if target.kind == "export":
            model, tokenizer, logits = load_export(target, self.dtype_for(target))
        elif target.kind == "run":
            model, tokenizer, logits = (*load_own_run(target, self.dtype_for(target)), None)
        else:
            model, tokenizer, logits = (*load_model(target, self.dtype_for(target)), None)
        size = model_bytes(model) if model is not None else weight_file_bytes(target.weights)
        runtime = "torch" if model is not None else target.export_format
        if logits is not None:
            logits = self._padded(logits)
        elif model is not None and "classify" in target.capabilities and self.runtime != "torch":
            runner, evidence = onnx_classifier(target, model, tokenizer)
            if runner is not None:
                logits, runtime = self._padded(runner.logits), f"onnx (max logit difference {evidence:.1e})"
                size += weight_file_bytes(Path(runner.folder))
            elif self.runtime == "onnx":
                raise NichetuneError(f"{target.name} cannot run in onnxruntime: {evidence}",
                                     hint="serve it with --runtime torch (or auto, which falls back to torch)")
        group = Group(key, model, shared=False, members={target.name}, bytes=size)
        self.groups[key] = group
        return Loaded(target, group, model, tokenizer, logits=logits, runtime=runtime)

    def _padded(self, logits: Callable) -> Callable:
        return lambda texts: logits(texts, max_padding=self.max_padding)
