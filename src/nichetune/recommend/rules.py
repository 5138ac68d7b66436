"""The decision table: every rule that ``nichetune recommend`` can fire, in the order they apply.

A rule has a condition on the evidence (``e``, from the data audit) and the constraints (``c``,
from the user), the recipe settings it decides, and a sentence giving the evidence that fired it.
Rules apply top to bottom; a later rule may refine a setting an earlier one made (the method
rules come first, the constraints that override them after).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..data.audit.overview import ADAPTERS_BELOW, FEW_SHOT_BELOW
from ..data.label_words import reads_as_words
from ..data.schema import row_schema
from ..hardware import cpu_has_fast_bf16, cpu_has_int8_dot
from ..tasks.lexical import KINDS
from .evidence import Constraints, Evidence

TINY_DATA = 100          # training rows below which only the smallest methods are safe
FULL_FT_ROWS = 4_000     # training rows (5,000 examples less a held-out 20%) from which full fine-tuning
                         # can pay off, given a GPU
FULL_FT_ROWS_CPU = 20_000
SMALL_ENCODER = 50_000_000  # weights up to which a CPU moves them all at about LoRA's cost (MiniLM: 1.18x the time)
SMALL_FULL_LR = 1.5e-4   # FOLDOC subjects study (benchmarks/README.md): 0.441 validation macro-F1 against LoRA's 0.393
TIGHT_LATENCY_MS = 50    # a CPU budget under which int8 and short inputs are needed
DECODER_LATENCY_MS = 1_000
EVIDENCE_TEST_ROWS = 250  # held-out rows that let a paired test see a ~7-point accuracy difference at p < 0.05
VALIDATION_SHARE = 0.1
FEW_SHOT_PER_CLASS = 16  # training rows per label below which pairs of rows teach more than rows alone
CONTRASTIVE_ITERATIONS = 20  # SetFit's default: 20 positive and 20 negative partners per row
PAIR_LENGTH = 256  # SetFit's and MiniLM's own window; pairs cost 2 x iterations x rows passes
WINDOWS_CUT_SHARE = 0.25  # documents, not the odd long review: a prediction costs a pass per window
WINDOWS_EVIDENCE = ("BBC News, 8 rows a label: +0.9 points of test macro-F1 over head + tail on the same runs, five "
                    "samples, -0.8 to +2.4")


@dataclass(frozen=True)
class Rule:
    name: str
    when: Callable[[Evidence, Constraints], bool]
    then: Callable[[Evidence, Constraints], dict]
    because: Callable[[Evidence, Constraints], str]


def _classify(e: Evidence) -> bool:
    return row_schema(e.task).labelled


QUANTIZE_WORDS = {
    "int8": "merged int8 weights (ONNX int8 for an encoder classifier: onnxruntime's kernels are fast on any x86 CPU)",
    "bf16": "merged bf16 weights (this CPU lacks int8 dot-product instructions, which a decoder's int8 layers need, "
            "and has native bf16)",
    "none": "merged fp32 weights (this CPU lacks int8 dot-product instructions, which a decoder's int8 layers need: "
            "they would run slower than fp32)"}


def _fast_quantize(e: Evidence) -> str:
    """The weights that serve fastest on this machine: int8 for encoder classifiers (ONNX), for a decoder (a language
    model, or a classifier on one) only where the CPU has int8 dot products (torchao's int8), else bf16 where native,
    else fp32."""
    if (_classify(e) and e.encoder) or cpu_has_int8_dot():
        return "int8"
    return "bf16" if cpu_has_fast_bf16() else "none"


def _index_folder(docs: tuple[str, ...]) -> str:
    return f"indexes/{Path(docs[0].rstrip('/')).stem or 'docs'}"


def _lora_rank(e: Evidence) -> int:
    return 8 if e.train_rows < 1_000 else 16 if e.train_rows < 10_000 else 32


def _epochs(e: Evidence) -> int:
    return 20 if e.train_rows < TINY_DATA else 10 if e.train_rows < 1_000 else 5 if e.train_rows < 10_000 else 3


def _max_length(e: Evidence) -> int:
    return int(min(512, max(32, -(-e.p95_tokens // 32) * 32)))


def _test_share(e: Evidence) -> float:
    """The test share that holds out ``EVIDENCE_TEST_ROWS`` rows, between the default 10% and 25%."""
    return round(min(0.25, max(0.1, EVIDENCE_TEST_ROWS / max(e.rows, 1))), 2)


def rare_share(e: Evidence) -> float:
    """The share of rows whose label has fewer than ``FEW_SHOT_BELOW`` rows in all."""
    total = sum(e.labels.values())
    return sum(v for v in e.labels.values() if v < FEW_SHOT_BELOW) / total if total else 0.0


def _tiny(e: Evidence) -> bool:
    """Too few rows, or most rows in labels too small to learn. A long tail of rare labels beside well-filled ones
    (FOLDOC's 122 subjects: 2% of rows in labels under 8 rows) is not tiny data: the rare labels are hard for any
    method, and the rest deserve the default recipe and the lexical stack."""
    return e.train_rows < TINY_DATA or (_classify(e) and rare_share(e) >= 0.5)


def _lexical_sentence(e: Evidence) -> str:
    best = e.lexical["best"]
    return (f"{KINDS[best]} already reaches accuracy {e.lexical[best]['accuracy']:.3f} and macro-F1 "
            f"{e.lexical[best]['macro_f1']:.3f} on the {e.lexical.get('scored_on', 'held-out 20%')}: the encoder is "
            "stacked with it (weights fitted on validation), so the specialist is never worse than the words alone, "
            "and `nichetune eval` says plainly when the tuned model does not beat it")


def cut_share(e: Evidence, max_length: int) -> float:
    """The share of rows longer than ``max_length`` tokens, from the length quantiles (to 5%)."""
    q = e.length_quantiles
    return sum(v > max_length for v in q[1:]) / max(len(q) - 1, 1) if q else 0.0


def long_inputs(e: Evidence, max_length: int) -> dict:
    """Head + tail truncation where at least 5% of a classifier's rows are longer than its window."""
    return {"model": {"truncation": "head_tail"}} if _classify(e) and cut_share(e, max_length) >= 0.05 else {}


def _few_shot_window(e: Evidence) -> int:
    """The window a few-shot recipe reads: the pair stage's at most, the base model's for the zero-shot prior."""
    return _max_length(e) if words_know_more(e) else min(_max_length(e), PAIR_LENGTH)


def few_shot(e: Evidence) -> bool:
    """An encoder classifier with fewer than ``FEW_SHOT_PER_CLASS`` training rows per label on average."""
    return _classify(e) and e.encoder and e.train_rows < FEW_SHOT_PER_CLASS * max(e.classes, 1)


def words_know_more(e: Evidence) -> bool:
    """Few-shot data where the base model's zero-shot, labels worded, scores at least what a head on its untrained
    embeddings learns from the rows (cross-validated on the training and validation rows together): the examples
    teach less than the label words already say, so the encoder stays as pretrained and its zero-shot joins the
    head as a prior."""
    cv = e.zero_shot.get("cross_validated")
    return few_shot(e) and bool(cv) and cv["zero_shot_macro_f1"] >= cv["head_macro_f1"]


def _prior_reason(e: Evidence, c: Constraints) -> str:
    cv = e.zero_shot["cross_validated"]
    return (f"on the {cv['rows']} training and validation rows ({cv['folds']}-fold cross-validation for the head) "
            f"the base model untrained, labels worded as '{e.zero_shot['template']}', scores macro-F1 "
            f"{cv['zero_shot_macro_f1']:.3f} and a head on its untrained embeddings {cv['head_macro_f1']:.3f}: the "
            f"{e.train_rows} rows teach less than the label words already say, so every block stays as pretrained, "
            "the head is fitted by logistic regression and the zero-shot joins its logits as a prior weighted on "
            "validation (no training steps; with the pair stage where the rows teach more, 2.8 points of macro-F1 "
            "over SetFit-style on nine drug-review samples, benchmarks/README.md)")


def _anchor_reason(e: Evidence) -> str:
    if not reads_as_words(e.labels):
        return " (the label names read as codes, so they join no pairs)"
    return (", each label's name joining the pairs as one of its rows (the words the base model already knows: "
            "a zero-shot prior)")


def _small_full(e: Evidence) -> bool:
    """A small encoder classifier with enough rows, on any compute: every weight moves for about the cost of LoRA,
    rare labels included (FOLDOC's 122 subjects, down to one row, gained 4.8 points of macro-F1 over LoRA)."""
    return (_classify(e) and e.encoder and 0 < e.model_params <= SMALL_ENCODER and e.train_rows >= FULL_FT_ROWS
            and not _tiny(e))


def _full(e: Evidence, c: Constraints) -> bool:
    enough = e.train_rows >= (FULL_FT_ROWS if c.compute != "cpu" else FULL_FT_ROWS_CPU)
    return _small_full(e) or (enough and (not _classify(e) or e.min_class >= ADAPTERS_BELOW))


def _full_settings(e: Evidence) -> dict:
    if _small_full(e):
        return {"lr": SMALL_FULL_LR, "head_lr": 3e-3}
    return {"lr": 5e-5 if _classify(e) else 2e-5, "layer_decay": 0.9, "warmup": 0.06}


def _full_reason(e: Evidence, c: Constraints) -> str:
    if _small_full(e):
        return (f"{e.train_rows} training rows on a {e.model_params / 1e6:.0f}M-weight encoder: moving every weight "
                "costs about what LoRA does and learns more (a FOLDOC subjects study: +4.8 points of validation "
                f"macro-F1 over LoRA r=16 at LR {SMALL_FULL_LR:g}, benchmarks/README.md)")
    return (f"{e.train_rows} training rows on {c.compute} compute: enough to move every weight; layer-wise LR decay "
            "keeps the lower layers close to pretraining")


RULES: tuple[Rule, ...] = (
    Rule("base model", lambda e, c: True,
         lambda e, c: {"model": {"name": e.model, "max_length": _max_length(e)}},
         lambda e, c: f"{e.task} task; 95% of rows are at most {e.p95_tokens:.0f} tokens under this tokenizer"),
    Rule("long inputs: read the head and the tail", lambda e, c: bool(long_inputs(e, _max_length(e))),
         lambda e, c: long_inputs(e, _max_length(e)),
         lambda e, c: f"{cut_share(e, _max_length(e)):.0%} of rows are longer than {_max_length(e)} tokens: the "
                      "classifier reads their first quarter and last three quarters of its window (conclusions sit "
                      "at the end; Sun et al., 2019), and the report says how much text it read"),
    Rule("few examples per label: contrastive pairs, then every weight",
         lambda e, c: few_shot(e) and not words_know_more(e),
         lambda e, c: {"method": {"name": "full"}, "model": {"max_length": min(_max_length(e), PAIR_LENGTH)},
                       "train": {"lr": 5e-5, "head_lr": 5e-3, "contrastive": CONTRASTIVE_ITERATIONS,
                                 "head_init": "logistic",
                                 **({"label_anchors": True} if reads_as_words(e.labels) else {})}},
         lambda e, c: f"{e.train_rows} training rows for {e.classes} labels: pairs of rows ({CONTRASTIVE_ITERATIONS} "
                      "same-label and other-label partners per row, SetFit's idea) shape the encoder before the head "
                      f"trains{_anchor_reason(e)}; the head is then fitted by logistic regression to convergence, as "
                      "SetFit's is (early stopping on a few validation rows a label otherwise picks a nearly "
                      f"untrained head by chance); a {e.model_layers}-block encoder is cheap to fine-tune whole on so "
                      f"few rows; at most {PAIR_LENGTH} tokens, as pairs multiply the passes"),
    Rule("few examples, long inputs: read them whole, in windows",
         lambda e, c: few_shot(e) and cut_share(e, _few_shot_window(e)) >= WINDOWS_CUT_SHARE,
         lambda e, c: {"model": {"truncation": "windows"}},
         lambda e, c: f"{cut_share(e, _few_shot_window(e)):.0%} of rows are longer than the {_few_shot_window(e)}"
                      "-token window: training reads their head and tail, predictions read all of each text in "
                      "overlapping windows and average their logits (few labelled rows: every word of a text "
                      f"counts; {WINDOWS_EVIDENCE})"),
    Rule("tiny data: train the head and the top block", lambda e, c: _tiny(e) and _classify(e) and not few_shot(e),
         lambda e, c: {"method": {"name": "freeze", "layers": max(0, e.model_layers - 1)},
                       "train": {"lr": 2e-3, "head_lr": 5e-3}},
         lambda e, c: f"{e.train_rows} training rows, {rare_share(e):.0%} of them in labels with fewer than "
                      f"{FEW_SHOT_BELOW} rows: too few to move {e.model_layers} blocks; few-shot prompting is "
                      "reported beside it by `nichetune eval`"),
    Rule("tiny data: prompt tuning", lambda e, c: _tiny(e) and not _classify(e),
         lambda e, c: {"method": {"name": "prompt_tuning", "num_virtual_tokens": 20}, "train": {"lr": 3e-2}},
         lambda e, c: f"{e.train_rows} training rows: 20 virtual tokens are the fewest weights that can adapt"),
    Rule("default: LoRA", lambda e, c: not _tiny(e) and not _full(e, c),
         lambda e, c: {"method": {"name": "lora", "r": _lora_rank(e), "alpha": 2 * _lora_rank(e),
                                  "dropout": 0.0,  # PEFT drops a copy of each adapted layer's input
                                  "target_modules": "all-linear"},
                       "train": {"lr": 1e-3 if _classify(e) else 5e-4, **({"head_lr": 3e-3} if _classify(e) else {})}},
         lambda e, c: f"{e.train_rows} training rows: enough for low-rank updates (rank {_lora_rank(e)} grows "
                      "with the data), too few to justify moving every weight; no LoRA dropout (it keeps a dropped "
                      "copy of every adapted layer's input: +47% step time, +0.45 GB on MiniLM at 416 tokens)"),
    Rule("enough data and compute: full fine-tuning", _full,
         lambda e, c: {"method": {"name": "full"}, "train": _full_settings(e)}, _full_reason),
    Rule("words carry the label: stack TF-IDF with the encoder",
         lambda e, c: _classify(e) and not _tiny(e) and bool(e.lexical),
         lambda e, c: {"train": {"lexical": "stack"}}, lambda e, c: _lexical_sentence(e)),
    Rule("epochs by data size, early stopping", lambda e, c: not words_know_more(e),
         lambda e, c: {"train": {"epochs": _epochs(e), "early_stopping": {"patience": 3}, "schedule": "cosine",
                                 "warmup": 0.1, "batch_size": 32 if e.train_rows >= 10_000 else 16}},
         lambda e, c: f"{e.train_rows} training rows: {_epochs(e)} epochs at most, stopping after 3 evaluations "
                      "without improvement and restoring the best"),
    Rule("few examples, label words that know more: the pretrained encoder, a fitted head, the zero-shot prior",
         lambda e, c: words_know_more(e),
         lambda e, c: {"method": {"name": "freeze", "layers": e.model_layers},
                       "train": {"epochs": 0, "head_init": "logistic", "zero_shot_prior": True}},
         _prior_reason),
    Rule("small data: regularise", lambda e, c: e.train_rows < 1_000,
         lambda e, c: {"train": {"weight_decay": 0.01, **({"label_smoothing": 0.1} if _classify(e) else {})}},
         lambda e, c: f"{e.train_rows} training rows overfit quickly"),
    Rule("imbalanced classes: class weights, macro-F1", lambda e, c: _classify(e) and e.imbalance_ratio >= 3,
         lambda e, c: {"train": {"class_weights": True}, "eval": {"metric": "macro_f1"}},
         lambda e, c: f"largest class is {e.imbalance_ratio:.1f}x the smallest ({e.labels})"),
    Rule("grouped rows: group-aware split", lambda e, c: e.group_field is not None and not e.given_validation,
         lambda e, c: {"data": {"split": {"group_field": e.group_field}}},
         lambda e, c: f"rows share a `{e.group_field}`: splitting by it keeps one group's rows out of two splits"),
    Rule("small data: a test split big enough to be evidence",
         lambda e, c: _test_share(e) > 0.1 and not e.given_validation,
         lambda e, c: {"data": {"split": {"ratios": [round(1 - VALIDATION_SHARE - _test_share(e), 2),
                                                     VALIDATION_SHARE, _test_share(e)]}}},
         lambda e, c: f"{e.rows} rows: the default 10% test split holds {e.rows // 10} rows, too few for a paired "
                      f"test to tell a few points of difference from chance; {_test_share(e):.0%} holds "
                      f"{round(e.rows * _test_share(e))}"),
    Rule("duplicates: deduplicate first", lambda e, c: e.redundant_share >= 0.01,
         lambda e, c: {},
         lambda e, c: f"{e.redundant_share:.1%} of rows are redundant duplicates: run `nichetune data dedup` "
                      "before training" + (" (the split keeps a text's copies in one split unless two named groups "
                                           "hold them, but each copy still counts again in training and in the test "
                                           "score)" if _classify(e) else
                                           ", or copies in evaluation splits inflate their scores")),
    Rule("sensitive data with PII: mask before training", lambda e, c: c.sensitivity != "none" and e.pii_rows > 0,
         lambda e, c: {"data": {"pii": "mask"}},
         lambda e, c: f"{c.sensitivity} data and {e.pii_rows} rows with PII ({', '.join(e.pii_types)}): "
                      "a model can memorise and repeat what it trains on"),
    Rule("regulated data: stay local", lambda e, c: c.sensitivity == "regulated",
         lambda e, c: {"model": {"trust_remote_code": False}, "train": {"tracking": []}},
         lambda e, c: "regulated data: no remote code, no tracking server; nichetune runs offline by default"),
    Rule("high consequence: calibrate, conformal sets, human review", lambda e, c: c.consequence == "high",
         lambda e, c: {"eval": {"alpha": 0.05, "target_accuracy": 0.95, "review": 100}},
         lambda e, c: "errors are costly: `nichetune eval` reports 95%-coverage conformal sets, the confidence "
                      "threshold for 95% accuracy, and exports 100 items for expert review"),
    Rule("knowledge changes often: retrieval, small adapters", lambda e, c: c.knowledge_changes,
         lambda e, c: {"deploy": {"retrieval": True}}
         | ({"method": {"r": 8, "alpha": 16}} if not _tiny(e) and not _full(e, c) else {}),
         lambda e, c: "the facts change often: serve them from retrieval over current documents and keep the "
                      "adapter small and cheap to retrain, rather than baking facts into weights"),
    Rule("index plan: the documents to retrieve from", lambda e, c: c.knowledge_changes and bool(c.docs),
         lambda e, c: {"retrieval": {"docs": list(c.docs), "index": _index_folder(c.docs), "k": 3}
                       | ({"pii": "mask"} if c.sensitivity != "none" else {})},
         lambda e, c: f"build the index with `nichetune index build --recipe RECIPE` (BM25 + MiniLM over "
                      f"{len(c.docs)} document source(s), 800-character chunks), serve with `--index` and "
                      "`--retrieve`, and teach the model to use sources with `nichetune index raft`"),
    Rule("index plan: name the documents", lambda e, c: c.knowledge_changes and not c.docs,
         lambda e, c: {},
         lambda e, c: "no documents named: run recommend again with --docs FILES to get an index plan in the recipe"),
    Rule("tight latency: int8, merged, shorter inputs",
         lambda e, c: c.latency_ms is not None and c.latency_ms < (TIGHT_LATENCY_MS if _classify(e)
                                                                    else DECODER_LATENCY_MS),
         lambda e, c: {"deploy": {"merge": True, "quantize": _fast_quantize(e), "latency_budget_ms": c.latency_ms},
                       "model": {"max_length": min(_max_length(e), 128)}},
         lambda e, c: f"a {c.latency_ms:g} ms budget: {QUANTIZE_WORDS[_fast_quantize(e)]} and at most 128 tokens "
                      "per input (`nichetune export RUN --out DIR` writes that form; `nichetune eval` measures every "
                      "variant against the budget)"),
    Rule("latency budget recorded", lambda e, c: c.latency_ms is not None,
         lambda e, c: {"deploy": {"latency_budget_ms": c.latency_ms}},
         lambda e, c: f"the report checks p95 latency against {c.latency_ms:g} ms"),
    Rule("edge deployment: merged int8", lambda e, c: c.target == "edge",
         lambda e, c: {"deploy": {"target": "edge", "merge": True, "quantize": "int8"}},
         lambda e, c: "edge devices want one small file: adapters merged, weights int8"),
    Rule("CPU training: bf16 where native", lambda e, c: c.compute == "cpu",
         lambda e, c: {"train": {"precision": "auto", "compile": False}},
         lambda e, c: "CPU: bf16 autocast when the CPU has native bf16 (about 4x fp32 matmul speed); "
                      "torch.compile's ~95 s start-up does not pay off on short runs"),
    Rule("GPU training: bf16, bigger batches", lambda e, c: c.compute in ("gpu", "cluster"),
         lambda e, c: {"train": {"precision": "bf16", "batch_size": 32}},
         lambda e, c: f"{c.compute}: bf16 and batch 32; on a cluster launch with `accelerate launch` or `torchrun`"),
)


def decide(e: Evidence, c: Constraints) -> tuple[dict, list[dict]]:
    """Apply every rule in order: the merged recipe fragment and the list of fired rules."""
    from ..config.recipe import merge_dicts

    recipe: dict = {}
    fired = []
    for rule in RULES:
        if rule.when(e, c):
            settings = rule.then(e, c)
            recipe = merge_dicts(recipe, settings)
            fired.append({"rule": rule.name, "settings": flatten(settings), "because": rule.because(e, c)})
    return recipe, fired


def flatten(tree: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in tree.items():
        if isinstance(value, dict) and value:
            out.update(flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out
