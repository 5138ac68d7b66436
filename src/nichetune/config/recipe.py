"""The recipe schema and its loader (YAML + ``key=value`` overrides, validated at the edge)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ..data.readers import require_input
from ..data.schema import FieldMap
from ..data.split import check_ratios
from ..errors import NichetuneError
from ..methods.configs import MethodConfig
from ..patterns import check_regex
from ..tasks import direction, metric_names, task_spec
from ..truncation import Truncation

MAX_LENGTH_LIMIT = 131_072  # longer than any context a model here supports; a typo like 1e9 stops at --check


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ModelSection(_Section):
    name: str = "minilm-l6"
    max_length: int = Field(256, ge=8, le=MAX_LENGTH_LIMIT)
    truncation: Truncation = Field(
        "head", description="a classifier's text longer than max_length: its first tokens, the first quarter and last "
        "three quarters, or all of it in overlapping windows whose logits are averaged (trained on head + tail)")
    allow_pickle: bool = False
    trust_remote_code: bool = False


class SplitSection(_Section):
    ratios: tuple[float, ...] = (0.8, 0.1, 0.1)
    stratify: bool = True
    group_field: str | None = Field("group", description="rows sharing this field's value stay in one split "
                                    "(data.fields.group lands in 'group'); null splits row by row")
    seed: int = Field(0, ge=0, lt=2**32)

    @field_validator("ratios")
    @classmethod
    def _shares(cls, ratios: tuple[float, ...]) -> tuple[float, ...]:
        return check_ratios(ratios)


class DataSection(_Section):
    """Either files (``train`` [+ ``validation``, ``test``]) or a built-in ``dataset`` split here."""

    dataset: str | None = None
    train: str | None = None
    validation: str | None = None
    test: str | None = None
    split: SplitSection = Field(default_factory=SplitSection)
    fields: FieldMap = Field(default_factory=FieldMap)
    limit: int | None = Field(None, ge=1, description="use at most this many training rows (quick runs)")
    eval_limit: int | None = Field(None, ge=1, description="use at most this many validation and test rows")
    pii: Literal["keep", "mask"] = Field("keep", description="mask: replace detected PII with [TYPE] in every "
                                         "split before training")

    @model_validator(mode="after")
    def _one_source(self) -> DataSection:
        if (self.dataset is None) == (self.train is None):
            raise ValueError("give exactly one of data.dataset (a built-in dataset) or data.train (a file)")
        return self


class EarlyStopping(_Section):
    patience: int = Field(3, ge=1, description="evaluations without improvement before stopping")
    metric: str | None = Field(None, description="default: eval.metric")
    mode: Literal["min", "max"] | None = Field(None, description="default: min for loss/perplexity, else max")


class TrainSection(_Section):
    epochs: float = Field(3, ge=0, description="passes over the training rows; 0: no training loop (the stages "
                          "before it only, e.g. a head fitted by train.head_init: logistic)")
    max_steps: int | None = Field(None, ge=1)
    batch_size: int = Field(16, ge=1)
    grad_accum: int = Field(1, ge=1)
    max_batch_tokens: int | None = Field(
        None, ge=1, description="padded tokens one forward pass holds; a larger batch is run in slices with the same "
        "gradient (default on a CPU, where activations of long rows dominate memory: 4096 for a MiniLM-sized body, "
        "fewer for deeper and wider ones, never under 1024; no limit on a GPU)")
    gradient_checkpointing: int = Field(
        0, ge=0, description="recompute each transformer layer's activations in the backward pass instead of keeping "
        "them: 0 (false) off, 1 (true) every layer, n every n-th layer. Less memory for more compute: on SmolLM2-135M "
        "at 512 tokens a forward pass, every layer took a CPU run's peak from 2.15 to 1.48 GB and its speed down 32%")
    lr: float = Field(2e-4, gt=0)
    head_lr: float | None = Field(None, gt=0)
    layer_decay: float = Field(1.0, gt=0, le=1)
    group_lrs: dict[str, float] = Field(default_factory=dict, description="regex on parameter names -> LR")
    weight_decay: float = Field(0.01, ge=0)
    warmup: float = Field(0.06, ge=0, description="a ratio of total steps if < 1, else a number of steps")
    schedule: Literal["cosine", "linear", "constant"] = "cosine"
    max_grad_norm: float | None = Field(1.0, gt=0)
    dropout: float | None = Field(None, ge=0, lt=1)
    attention_dropout: float | None = Field(
        0.0, ge=0, lt=1, description="dropout on attention weights (null: the model's own). 0 keeps training on "
        "PyTorch's fused attention kernels; any other value falls back to the math path, which on a CPU made a "
        "MiniLM step at 416 tokens 3x slower with 2.7x the peak memory")
    label_smoothing: float = Field(0.0, ge=0, lt=1)
    class_weights: bool = False
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"
    deterministic: bool = False
    packing: bool = False
    group_by_length: bool = True
    loss_on: Literal["assistant", "all"] = "assistant"
    eval_every: int | None = Field(None, ge=1, description="steps between evaluations (default: each epoch)")
    save_every: int | None = Field(None, ge=1, description="steps between checkpoints (default: each evaluation)")
    log_every: int = Field(10, ge=1)
    keep_checkpoints: int = Field(2, ge=1)
    early_stopping: EarlyStopping | None = None
    swa_last_k: int | None = Field(None, ge=2, description="average the weights of the last K evaluations")
    wise_ft: float = Field(0.0, ge=0, lt=1, description="WiSE-FT: move the final weights this share of the way "
                           "back to the start (train.wise_from); 0: off")
    wise_from: Literal["loop", "pretrained"] = Field("loop", description="with train.wise_ft, the start blended "
                                                     "with: the weights the loop started from (after "
                                                     "train.contrastive and train.head_init), or the pretrained "
                                                     "body, before the pair stage (the head is then fitted again "
                                                     "on the blend with train.head_init: logistic)")
    compile: bool = False
    contrastive: int = Field(0, ge=0, le=200, description="few-shot classification: iterations of SetFit-style "
                             "label pairs (one same-label, one other-label per row) before the head trains; 0: off")
    label_anchors: bool = Field(False, description="with train.contrastive: each label whose name reads as words "
                                "joins the pairs as a row of its label, its name as the text (a zero-shot prior)")
    anchor_wording: Literal["name", "chosen"] = Field("name", description="with train.label_anchors: an anchor's "
                                                      "text is the label's name, or (chosen) the name in the "
                                                      "sentence the zero-shot baseline words it with, chosen on the "
                                                      "training rows (infer.label_wording)")
    head_init: Literal["random", "logistic"] = Field("random", description="classification: logistic fits the fresh "
                                                     "head by logistic regression on the encoder's features before "
                                                     "the loop (SetFit's head; after train.contrastive)")
    zero_shot_prior: bool = Field(False, description="classification with a whole-model method: add the base "
                                  "encoder's zero-shot similarity to each label, worded as the zero-shot baseline "
                                  "words it, to the head's logits, weighted on validation (models.similarity_prior); "
                                  "it is the base model's only while the encoder stays pretrained (method freeze, "
                                  "every block)")
    lexical: Literal["off", "stack"] = Field("off", description="stack: combine the classifier with TF-IDF + a "
                                             "linear model, weighted on validation (never worse than the words)")
    tracking: list[Literal["tensorboard", "mlflow"]] = Field(default_factory=list)

    @field_validator("warmup")
    @classmethod
    def _warmup(cls, value: float) -> float:
        if value >= 1 and value != int(value):
            raise ValueError(f"warmup {value:g} is neither a ratio below 1 nor a whole number of steps")
        return value

    @field_validator("group_lrs")
    @classmethod
    def _patterns(cls, value: dict[str, float]) -> dict[str, float]:
        for pattern, lr in value.items():
            check_regex(pattern)
            if not lr > 0:
                raise ValueError(f"the learning rate for {pattern!r} must be above 0, got {lr}")
        return value


class EvalSection(_Section):
    metric: str | None = Field(None, description="picks the best checkpoint: default accuracy "
                               "(classification) or loss (sft, completion)")
    batch_size: int = Field(32, ge=1)
    test: bool = Field(True, description="score the test split once training ends (never during training)")
    alpha: float = Field(0.1, gt=0, lt=1, description="nichetune eval: conformal miscoverage")
    target_accuracy: float = Field(0.9, gt=0, le=1, description="nichetune eval: selective-prediction target")
    review: int | None = Field(None, ge=1, description="nichetune eval: export this many items for expert review")


class MonitorSection(_Section):
    """When ``nichetune monitor report`` raises an alarm: a drift test must be significant after Holm's
    correction over every window, slice and check, and its effect must reach its threshold."""

    alpha: float = Field(0.05, gt=0, lt=1, description="family-wise false-alarm rate of one report")
    psi: float = Field(0.1, ge=0, description="population stability index a distribution shift must reach")
    ks: float = Field(0.1, ge=0, le=1, description="Kolmogorov-Smirnov statistic a continuous shift must reach")
    oov: float = Field(0.05, ge=0, le=1, description="rise in the out-of-vocabulary word rate")
    accuracy_drop: float = Field(0.05, ge=0, le=1, description="drop in estimated or measured accuracy")
    min_items: int = Field(30, ge=5, description="a window or slice with fewer items is shown but not tested")
    embedding_items: int = Field(100, ge=10, description="items per side for the embedding (MMD) test")


class DeploySection(_Section):
    """How the model will be served; ``nichetune eval`` checks the latency budget."""

    target: Literal["server", "edge", "batch"] = "server"
    merge: bool = False
    quantize: Literal["none", "bf16", "int8"] = "none"
    retrieval: bool = Field(False, description="serve changing facts from retrieval over domain documents")
    latency_budget_ms: float | None = Field(None, gt=0, description="p95 single-request latency budget")
    monitor: MonitorSection = Field(default_factory=MonitorSection)


class RetrievalSection(_Section):
    """The index plan for knowledge that changes: ``nichetune index build --recipe RECIPE`` builds ``index`` from
    ``docs``; the served model answers from it (``nichetune serve --index``/``--retrieve``)."""

    docs: list[str] = Field(min_length=1, description="files or folders of domain documents")
    index: str = Field(description="the index folder to build")
    encoder: str = Field("minilm-l6", description="the dense encoder: an embedded name, a model folder or a run")
    max_chars: int = Field(800, ge=50, description="the most characters per chunk")
    overlap: int = Field(120, ge=0, description="characters a chunk repeats from the one before")
    k: int = Field(3, ge=1, le=20, description="chunks given to the model per question")
    dense_search: Literal["exact", "faiss"] = Field("exact", description="exact cosine, or faiss HNSW (large)")
    pii: Literal["keep", "mask", "quarantine"] = Field("keep", description="documents with PII: keep, mask it, "
                                                        "or quarantine the document")


class SearchParam(_Section):
    """One searched setting: ``float`` (``log: true`` for log-uniform), ``int``, or ``categorical``."""

    type: Literal["float", "int", "categorical"]
    low: float | None = None
    high: float | None = None
    log: bool = False
    choices: list[Any] | None = None

    @model_validator(mode="after")
    def _complete(self) -> SearchParam:
        if self.type == "categorical" and not self.choices:
            raise ValueError("a categorical parameter needs choices: [...]")
        if self.type != "categorical" and (self.low is None or self.high is None or self.low >= self.high):
            raise ValueError(f"a {self.type} parameter needs low < high")
        return self


class TuneSection(_Section):
    """``nichetune tune``: the search space (recipe key path -> parameter) and how to search it."""

    space: dict[str, SearchParam] = Field(default_factory=dict)
    trials: int = Field(20, ge=1)
    metric: str | None = Field(None, description="default: the metric that picks the best checkpoint")
    sampler: Literal["tpe", "grid"] = Field("tpe", description="tpe: Optuna's TPE; grid: every combination of "
                                            "categorical choices once (trials: at most the grid's size)")
    pruner: Literal["median", "none"] = "median"
    startup_trials: int = Field(2, ge=0, description="trials run to the end before pruning starts")
    prune_after: int = Field(1, ge=0, description="evaluations a trial reports before the pruner may stop it: "
                             "trials compare at the same step, and one epoch says little of a longer schedule")
    seed: int = 0
    heartbeat_s: int = Field(30, ge=1, description="a trial silent for 2x this long was killed; it is retried")

    @model_validator(mode="after")
    def _grid_is_categorical(self) -> TuneSection:
        if self.sampler != "grid":
            return self
        ranged = sorted(k for k, p in self.space.items() if p.type != "categorical")
        if ranged:
            raise ValueError(f"tune.sampler: grid takes categorical parameters only; {', '.join(ranged)} "
                             "are ranges: list their values (type: categorical, choices: [...]) or use sampler: tpe")
        if "method.name" in self.space and any(k.startswith("method.") and k != "method.name" for k in self.space):
            raise ValueError("tune.sampler: grid cannot cross method.name with method settings (a setting the chosen "
                             "method lacks would repeat a trial): search one method's settings per study")
        return self

    def grid_size(self) -> int:
        return math.prod(len(p.choices or ()) for p in self.space.values())


class Recipe(_Section):
    """A training recipe. Every section is typed; unknown keys are errors."""

    task: Literal["classification", "sft", "completion"]
    output_dir: str
    seed: int = Field(0, ge=0, lt=2**32)
    model: ModelSection = Field(default_factory=ModelSection)
    data: DataSection
    method: Annotated[MethodConfig, Field(discriminator="name")]
    train: TrainSection = Field(default_factory=TrainSection)
    eval: EvalSection = Field(default_factory=EvalSection)
    deploy: DeploySection = Field(default_factory=DeploySection)
    retrieval: RetrievalSection | None = None
    tune: TuneSection | None = None

    @model_validator(mode="after")
    def _known_metrics(self) -> Recipe:
        known = metric_names(self.task)
        stop = self.train.early_stopping
        for where, name in (("eval.metric", self.eval.metric), ("train.early_stopping.metric", stop and stop.metric),
                            ("tune.metric", self.tune and self.tune.metric)):
            if name is not None and name not in known:
                raise ValueError(f"{where}: {name!r} is not a metric of {self.task} runs; use one of "
                                 f"{', '.join(known)}")
        return self

    def selection_metric(self) -> tuple[str, str]:
        """The validation metric that picks the best checkpoint (and stops early), and ``min``/``max``."""
        stop = self.train.early_stopping
        metric = (stop.metric if stop else None) or self.eval.metric or task_spec(self.task).primary_metric
        return metric, (stop.mode if stop else None) or direction(metric)

    def headline_metric(self) -> str:
        """The metric a classifier's verdicts (and its lexical stack) are on: ``eval.metric`` when it is accuracy or
        macro-F1 (imbalanced data picks macro-F1, where always answering the big class scores well on accuracy),
        else accuracy."""
        return self.eval.metric if self.eval.metric in ("accuracy", "macro_f1") else "accuracy"

    def objective_metric(self) -> tuple[str, str]:
        """What a hyperparameter search optimises: ``tune.metric``, else the selection metric; and its direction."""
        if self.tune and self.tune.metric:
            return self.tune.metric, direction(self.tune.metric)
        return self.selection_metric()


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """``["train.lr=1e-4", "method.r=16"]`` -> nested dict; values are parsed as YAML scalars."""
    out: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise NichetuneError(f"override {item!r} is not key=value", hint="e.g. train.lr=1e-4 method.r=16")
        key, value = item.split("=", 1)
        node = out
        parts = key.strip().split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = yaml.safe_load(value)
    return out


def merge_dicts(base: dict, extra: dict) -> dict:
    """``extra`` over ``base``, nested dicts merged key by key."""
    merged = dict(base)
    for key, value in extra.items():
        nested = isinstance(value, dict) and isinstance(merged.get(key), dict)
        merged[key] = merge_dicts(merged[key], value) if nested else value
    return merged


def _explain(err: ValidationError, source: str) -> str:
    lines = []
    for e in err.errors():
        path = ".".join(str(p) for p in e["loc"] if not str(p).startswith(("function-after", "tagged-union")))
        message = "unknown key" if e["type"] == "extra_forbidden" else e["msg"]
        lines.append(f"  {path or '(top level)'}: {message}")
    return f"{source}: invalid recipe\n" + "\n".join(lines)


def load_recipe(path: str | Path | None = None, overrides: list[str] | None = None,
                data: dict | None = None) -> Recipe:
    """Load and validate a recipe; errors name the key path and the allowed values.

    Raises:
        NichetuneError: the file is missing, not YAML, or fails validation.
    """
    raw: dict = dict(data or {})
    source = "recipe"
    if path is not None:
        source = str(path)
        if not Path(path).exists():
            raise NichetuneError(f"{path}: no such recipe", hint="nichetune init --task TASK writes one")
        try:
            raw = yaml.safe_load(require_input(path).read_text()) or {}
        except yaml.YAMLError as exc:
            raise NichetuneError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise NichetuneError(f"{source}: a recipe is a mapping of sections (task, model, data, method, train, ...)")
    extra = parse_overrides(overrides or [])
    new_method = extra.get("method", {}).get("name") if isinstance(extra.get("method"), dict) else None
    if new_method and isinstance(raw.get("method"), dict) and raw["method"].get("name") != new_method:
        raw = {**raw, "method": {}}  # another method: the old method's settings do not apply to it
    raw = merge_dicts(raw, extra)
    try:
        return Recipe.model_validate(raw)
    except ValidationError as err:
        raise NichetuneError(_explain(err, source),
                             hint="see `nichetune init --task TASK` for a commented recipe") from None
