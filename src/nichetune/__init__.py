"""nichetune: turn a general pretrained model into a domain specialist, with evidence.

Importing nichetune changes no process state. It never downloads from a model hub unless you
opt in (``NICHETUNE_ONLINE=1``); the ``nichetune`` command also pins ``HF_HUB_OFFLINE=1`` for its
own process. Heavy modules load on first use.
"""

from __future__ import annotations

from importlib import import_module

__version__ = "0.1.0"

_LAZY = {
    "NichetuneError": "nichetune.errors",
    "resolve_model": "nichetune.models.resolve",
    "prepare_model": "nichetune.models.prepare",
    "list_models": "nichetune.models.embedded",
    "load_causal_lm": "nichetune.infer.loading",
    "load_tokenizer": "nichetune.models.loading",
    "generate": "nichetune.infer.generate",
    "classify": "nichetune.infer.classify",
    "FieldMap": "nichetune.data.schema",
    "validate_file": "nichetune.data.validate",
    "read_records": "nichetune.data.readers",
    "load_dataset": "nichetune.data.catalog",
    "list_datasets": "nichetune.data.catalog",
    "load_recipe": "nichetune.config.recipe",
    "Recipe": "nichetune.config.recipe",
    "train_recipe": ("nichetune.train.run", "train"),
    "load_run": "nichetune.run.loading",
    "read_run": "nichetune.run.loading",
    "merge_run": "nichetune.export.merged",
    "export_run": "nichetune.export.export",
    "open_registry": "nichetune.registry.store",
    "recommend_recipe": ("nichetune.recommend", "recommend"),
    "Constraints": "nichetune.recommend.evidence",
    "evaluate_run": "nichetune.eval.run",
    "compare": "nichetune.eval.compare",
    "run_demo": "nichetune.demo",
    "ServeConfig": "nichetune.serve.config",
    "create_app": "nichetune.serve.app",
    "create_key": "nichetune.serve.keys",
    "read_predictions": "nichetune.prediction_log",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        module, attr = _LAZY[name] if isinstance(_LAZY[name], tuple) else (_LAZY[name], name)
        return getattr(import_module(module), attr)
    raise AttributeError(f"module 'nichetune' has no attribute {name!r}")
