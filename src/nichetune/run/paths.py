"""Where everything in a run directory lives: the one place that spells its layout.

    RUN/recipe.yaml      the resolved recipe (every default filled in)
    RUN/data/            train / validation / test rows with manifests, test fingerprint, quarantine
    RUN/checkpoints/     step-NNNNNNN folders (atomic, sha256 manifests)
    RUN/metrics.jsonl    one line per logged step and per evaluation
    RUN/adapter/ or RUN/model/   the final weights (safetensors) with the tokenizer and chat template
    RUN/manifest.json    versions, seeds, hardware, sha256 of inputs and artifacts; written last
    RUN/eval/            what eval writes: metrics.json, predictions.jsonl, comparisons, review
    RUN/report.html      the evaluation report
    RUN/.lock            held (flock) by the one process training into RUN
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

MANIFEST = "manifest.json"
RECIPE = "recipe.yaml"
METRICS_FILE = "metrics.jsonl"
LOCK = ".lock"
WEIGHTS = ("adapter", "model")
# what train and eval write into a run directory; --fresh removes these and nothing else
RUN_ENTRIES = (RECIPE, MANIFEST, METRICS_FILE, "data", "checkpoints", *WEIGHTS, "eval", "report.html", "tensorboard")


@dataclass(frozen=True)
class RunPaths:
    """The paths of one run directory; ``RunPaths(run_dir).manifest`` and so on."""

    root: Path

    def __init__(self, root: str | Path) -> None:
        object.__setattr__(self, "root", Path(root))

    @property
    def recipe(self) -> Path:
        return self.root / RECIPE

    @property
    def manifest(self) -> Path:
        return self.root / MANIFEST

    @property
    def metrics(self) -> Path:
        return self.root / METRICS_FILE

    @property
    def lock(self) -> Path:
        return self.root / LOCK

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    @property
    def data(self) -> Path:
        return self.root / "data"

    def split(self, name: str) -> Path:
        """The rows of split ``name`` (train, validation, test) as the run used them."""
        return self.data / f"{name}.jsonl"

    def split_manifest(self, name: str) -> Path:
        """The provenance manifest of split ``name`` (sha256, rows, sources, lineage; no rows)."""
        return self.data / f"{name}.jsonl.manifest.json"

    def record(self) -> list[Path]:
        """The run's evidence without its rows, weights or checkpoints: what a registry keeps beside a model."""
        files = [self.manifest, self.recipe, self.metrics, self.report, self.eval_metrics, self.review,
                 *sorted(self.data.glob("*.manifest.json")), *sorted(self.data.glob("*.fingerprint.json")),
                 *self.comparisons()]
        return [f for f in files if f.is_file()]

    @property
    def tensorboard(self) -> Path:
        return self.root / "tensorboard"

    def weights(self, whole_model: bool) -> Path:
        """``model/`` for a whole saved model, ``adapter/`` for what is loaded on top of the base."""
        return self.root / WEIGHTS[whole_model]

    @property
    def eval(self) -> Path:
        return self.root / "eval"

    @property
    def eval_metrics(self) -> Path:
        return self.eval / "metrics.json"

    @property
    def predictions(self) -> Path:
        return self.eval / "predictions.jsonl"

    @property
    def eval_quarantine(self) -> Path:
        return self.eval / "quarantine.jsonl"

    def comparison(self, slug: str) -> Path:
        return self.eval / f"compare-{slug}.json"

    def comparisons(self) -> list[Path]:
        return sorted(self.eval.glob("compare-*.json"))

    @property
    def review(self) -> Path:
        return self.eval / "review.json"

    @property
    def review_sheet(self) -> Path:
        return self.eval / "review.csv"

    @property
    def report(self) -> Path:
        return self.root / "report.html"

    @property
    def finished(self) -> bool:
        """A run is finished when its manifest exists: it is written last."""
        return self.manifest.is_file()
