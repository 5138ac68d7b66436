"""Training throughput: nichetune's loop against a plain transformers Trainer + PEFT, each peer in its own process.

    .venv/bin/python benchmarks/train_throughput.py [--case sft encoder] [--steps 16] [--device cpu]

Case ``sft``: LoRA (r=16, alpha=32, all linear layers, dropout 0) on ``smollm2-135m-instruct`` with the same
``foldoc`` pairs, encoded once by nichetune (chat template, assistant-only labels), LR 2e-4 constant. Peers: the
``Trainer`` a user writes first (fp32, pad-to-longest batches of 8 in random order), the same ``Trainer`` with
``bf16=True`` (what a user who knows the CPU has native bf16 writes next), and nichetune's loop with its sft defaults
(bf16 autocast where native with the frozen base stored in bf16, packing, length grouping, the output layer only at
supervised positions) with as many packed rows per step as hold about the same number of examples.

Case ``encoder``: MiniLM-L6 sequence classification on ``bbc-news`` articles (256 tokens, batches of 16), LoRA (r=16,
all linear layers, dropout 0) and full fine-tuning: ``Trainer`` + PEFT with ``bf16=True`` and dynamic padding
against nichetune's loop with its defaults (attention dropout off, bucketed widths, a token budget per forward).

Reported per peer: supervised (loss-bearing) tokens per second (sft) or examples per second (encoder), the ratio of
nichetune over each peer, held-out loss on the same unseen rows after the same steps, the process's peak RSS (from
``wait4``), the C allocator it ran under (nichetune's peers under tcmalloc where installed, as ``nichetune train``
runs; the Trainer's under the system's unless ``--same-allocator``) and model FLOP utilisation against the bf16 and
fp32 matmul peak measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import torch
from child_peak import run_measured  # this folder: run as a script, it is on sys.path

from nichetune.cli.launch import relaunch_env
from nichetune.hardware import allocator
from nichetune.quiet import quiet_libraries

SFT_PEERS = ("trainer-fp32", "trainer-bf16", "nichetune")
ENCODER_PEERS = ("trainer-bf16-lora", "nichetune-lora", "trainer-bf16-full", "nichetune-full")
LR = {"sft": 2e-4, "lora": 1e-3, "full": 5e-5}


def matmul_peak(dtype: torch.dtype, device: str, n: int = 2048, seconds: float = 3.0) -> float:
    """FLOP/s of square matrix products in ``dtype``: the peak an MFU is read against."""
    a, b = torch.randn(n, n, dtype=dtype, device=device), torch.randn(n, n, dtype=dtype, device=device)
    a @ b
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    sync()
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        a @ b
        count += 1
    sync()
    return 2 * n**3 * count / (time.perf_counter() - start)


def _lora(model, task_type: str):
    import peft

    config = peft.LoraConfig(task_type=getattr(peft.TaskType, task_type), r=16, lora_alpha=32, lora_dropout=0.0,
                             target_modules="all-linear")
    return peft.get_peft_model(model, config)


def _matmul_params(model) -> int:
    """Parameters that multiply activations: all but input embedding tables (a tied output layer counts)."""
    emb = model.get_input_embeddings()
    tied = getattr(model.config, "tie_word_embeddings", False) and model.get_output_embeddings() is not None
    skip = {id(p) for m in model.modules() if isinstance(m, torch.nn.Embedding) for p in m.parameters()}
    if tied:
        skip.discard(id(emb.weight))
    return sum(p.numel() for p in model.parameters() if id(p) not in skip)


def _sft_data(args):
    import random

    from nichetune.data.catalog import load_dataset
    from nichetune.models.loading import load_tokenizer
    from nichetune.models.resolve import resolve_model
    from nichetune.tasks.causal import CausalTask

    resolved = resolve_model("smollm2-135m-instruct")
    tokenizer = load_tokenizer(resolved)
    rows = load_dataset("foldoc")
    random.Random(0).shuffle(rows)
    task = CausalTask(chat=True)
    examples = task.encode(rows[: args.rows], tokenizer, 256, train=True)
    heldout = task.encode(rows[args.rows : args.rows + 48], tokenizer, 256, train=False)
    return resolved, tokenizer, task, examples, heldout


def _encoder_data(args):
    import random

    from nichetune.data.catalog import load_dataset
    from nichetune.models.loading import load_tokenizer
    from nichetune.models.resolve import resolve_model
    from nichetune.tasks.classification import ClassificationTask

    resolved = resolve_model("minilm-l6")
    tokenizer = load_tokenizer(resolved)
    rows = load_dataset("bbc-news")
    random.Random(0).shuffle(rows)
    labels = sorted({r["label"] for r in rows})
    task = ClassificationTask(labels)
    examples = task.encode(rows[: args.rows], tokenizer, 256, train=True)
    heldout = task.encode(rows[args.rows : args.rows + 64], tokenizer, 256, train=False)
    return resolved, tokenizer, task, examples, heldout


def _heldout(model, task, items, pad_id, dtype, device) -> dict:
    from nichetune.tasks.scoring import score

    return score(model, task, items, batch_size=16, pad_id=pad_id, device=device, dtype=dtype)


def _trainer(model, examples, collate, args, bf16: bool, lr: float, batch: int) -> float:
    from transformers import Trainer, TrainingArguments

    targs = TrainingArguments(output_dir=str(args.out / "trainer"), per_device_train_batch_size=batch,
                              max_steps=args.steps, learning_rate=lr, warmup_steps=0, lr_scheduler_type="constant",
                              logging_steps=10**6, save_strategy="no", report_to=[], use_cpu=args.device == "cpu",
                              bf16=bf16, dataloader_num_workers=0, remove_unused_columns=False, seed=0,
                              disable_tqdm=True)
    trainer = Trainer(model=model, args=targs, train_dataset=examples, data_collator=collate)
    start = time.perf_counter()
    trainer.train()
    return time.perf_counter() - start


def _fit(model, task, items, args, cfg_kwargs: dict, pad_id: int, dtype: torch.dtype):
    from nichetune.config.recipe import TrainSection
    from nichetune.train.distributed import Dist
    from nichetune.train.loop import FitSpec, fit

    cfg = TrainSection(max_steps=args.steps, warmup=0, schedule="constant", log_every=10**6, max_grad_norm=1.0,
                       weight_decay=0.0, compile=args.compile, **cfg_kwargs)
    spec = FitSpec(cfg=cfg, seed=0, run_dir=args.out / "nichetune", ctx=Dist(device=args.device), pad_id=pad_id,
                   dtype=dtype, resume=False)
    start = time.perf_counter()
    result = fit(model, task, items, [], spec)
    torch.cuda.synchronize() if args.device.startswith("cuda") else None
    return result, time.perf_counter() - start


def run_peer(case: str, peer: str, args) -> dict:
    """Train one peer in this process; what it did, in numbers."""
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

    from nichetune.tasks.batching import collate_causal, collate_classification
    from nichetune.train.model_setup import cast_frozen

    torch.manual_seed(0)
    seen = {"supervised": 0, "inputs": 0, "padded": 0}
    if case == "sft":
        resolved, tokenizer, task, examples, heldout = _sft_data(args)
        model = _lora(AutoModelForCausalLM.from_pretrained(resolved.path, dtype=torch.float32), "CAUSAL_LM")
    else:
        resolved, tokenizer, task, examples, heldout = _encoder_data(args)
        attention = {"attention_probs_dropout_prob": 0.0} if peer.startswith("nichetune") else {}
        model = AutoModelForSequenceClassification.from_pretrained(resolved.path, num_labels=len(task.labels),
                                                                   dtype=torch.float32, **attention)
        if peer.endswith("lora"):
            model = _lora(model, "SEQ_CLS")
    model.to(args.device)
    pad_id = tokenizer.pad_token_id
    matmul = _matmul_params(model.get_base_model() if hasattr(model, "get_base_model") else model)
    method = "full" if peer.endswith("full") else "lora"
    if peer.startswith("trainer"):
        calls = []

        def collate(batch):
            calls.append(1)
            counted = len(calls) <= args.steps  # the data loader may collate a batch ahead of the last step
            if case == "sft":
                out = collate_causal(batch, pad_id)  # pad to the longest example of the batch
                supervised = int((out["labels"][:, 1:] != -100).sum())
            else:
                out = collate_classification(batch, pad_id)  # dynamic padding, no buckets
                out.pop("weights")
                supervised = len(batch)
            if counted:
                seen["supervised"] += supervised
                seen["inputs"] += int(out["attention_mask"].sum())
                seen["padded"] += out["input_ids"].numel()
            return out

        batch = args.batch_size if case == "sft" else 16
        seconds = _trainer(model, examples, collate, args, bf16=peer != "trainer-fp32",
                           lr=LR["sft" if case == "sft" else method], batch=batch)
        dtype = torch.float32 if peer == "trainer-fp32" else torch.bfloat16
        out = {**seen, "seconds": seconds, "examples_per_step": batch}
    else:
        from nichetune.hardware import pick_dtype

        dtype = pick_dtype("auto", args.device)
        if method == "lora" and dtype != torch.float32:
            cast_frozen(model, dtype)  # as `nichetune train` does for adapter methods
        if case == "sft":
            items = task.items(examples, 256, True)
            per_row = len(examples) / len(items)
            rows = max(1, round(args.batch_size / per_row))  # packed rows holding about batch-size examples
            cfg = {"batch_size": rows, "lr": LR["sft"], "packing": True}
        else:
            items, per_row, rows = task.items(examples, 256, False), 1.0, 16
            cfg = {"batch_size": 16, "lr": LR[method]}  # one LR for every weight, as the Trainer peer
        result, seconds = _fit(model, task, items, args, cfg, pad_id, dtype)
        out = {"seconds": seconds, "supervised": result.supervised_tokens if case == "sft" else 16 * args.steps,
               "inputs": result.input_tokens, "examples_per_step": round(rows * per_row, 2)}
    out["heldout"] = _heldout(model, task, heldout, pad_id, dtype, args.device)
    out["precision"] = str(dtype).removeprefix("torch.")
    out["allocator"] = allocator()
    out["flops"] = (4 if method == "lora" else 6) * matmul * out["inputs"]  # forward 2N, backward 2N (+2N weights)
    return out


def _child(case: str, peer: str, args) -> dict:
    path = args.out / f"{case}-{peer}.json"
    cmd = [sys.executable, __file__, "--child", case, peer, "--steps", str(args.steps), "--rows", str(args.rows),
           "--batch-size", str(args.batch_size), "--device", args.device, "--out", str(args.out)]
    cmd += ["--compile"] if args.compile else []
    # nichetune's peers run under the C allocator `nichetune train` re-executes under (tcmalloc where installed);
    # the Trainer's under the system's, as a user runs a script, unless --same-allocator
    env = relaunch_env(dict(os.environ)) if peer.startswith("nichetune") or args.same_allocator else None
    measured = run_measured(cmd, args.out / f"{case}-{peer}.log", env)  # the child's own peak, not this process's
    if measured["code"] != 0:
        raise SystemExit(f"{case} {peer} failed: see {args.out / f'{case}-{peer}.log'}")
    return {**json.loads(path.read_text()), "peak_rss_mb": measured["peak_mb"]}


def report(case: str, results: dict, peaks: dict) -> dict:
    unit = "supervised_tokens_per_s" if case == "sft" else "examples_per_s"
    out = {}
    for peer, r in results.items():
        peak = peaks["bf16" if r["precision"] == "bfloat16" else "fp32"]
        out[peer] = {unit: round(r["supervised"] / r["seconds"], 1), "seconds": round(r["seconds"], 1),
                     "heldout_loss": round(r["heldout"]["loss"], 4),
                     **({"heldout_accuracy": round(r["heldout"]["accuracy"], 3)} if case == "encoder" else {}),
                     "peak_rss_mb": r["peak_rss_mb"], "precision": r["precision"], "allocator": r["allocator"],
                     "mfu_vs_measured_peak": round(r["flops"] / r["seconds"] / peak, 3),
                     "inputs": r["inputs"], "padded": r.get("padded"), "examples_per_step": r["examples_per_step"]}
    for ours in (p for p in out if p.startswith("nichetune")):
        suffix = ours.removeprefix("nichetune")
        for peer in (p for p in out if p.startswith("trainer") and p.endswith(suffix)):
            out[ours][f"ratio_vs_{peer}"] = round(out[ours][unit] / out[peer][unit], 2)
    return out


def main() -> None:
    quiet_libraries()  # as the CLI does: torchao's CUDA-library notices would bury the figures
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--case", nargs="+", choices=("sft", "encoder"), default=["sft", "encoder"])
    parser.add_argument("--steps", type=int, default=16, help="optimizer steps per peer")
    parser.add_argument("--batch-size", type=int, default=8, help="sft examples per step")
    parser.add_argument("--rows", type=int, default=400, help="training rows to draw from")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--compile", action="store_true", help="also torch.compile nichetune's model")
    parser.add_argument("--out", type=Path, default=Path("/tmp/nichetune-bench-train"))
    parser.add_argument("--same-allocator", action="store_true",
                        help="run the Trainer peers under tcmalloc too (nichetune's always run as `nichetune train` "
                        "does: under tcmalloc where installed)")
    parser.add_argument("--child", nargs=2, metavar=("CASE", "PEER"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    if args.child:
        case, peer = args.child
        (args.out / f"{case}-{peer}.json").write_text(json.dumps(run_peer(case, peer, args)))
        return
    peaks = {"bf16": matmul_peak(torch.bfloat16, args.device), "fp32": matmul_peak(torch.float32, args.device)}
    summary = {"device": args.device, "threads": torch.get_num_threads(), "steps": args.steps,
               "matmul_peak_gflops": {k: round(v / 1e9) for k, v in peaks.items()}}
    for case in args.case:
        peers = SFT_PEERS if case == "sft" else ENCODER_PEERS
        summary[case] = report(case, {p: _child(case, p, args) for p in peers}, peaks)
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
