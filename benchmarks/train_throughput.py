"""LoRA SFT throughput: nichetune's loop against a plain transformers Trainer + PEFT, in one process.

    .venv/bin/python benchmarks/train_throughput.py [--steps 24] [--batch-size 8] [--rows 400] [--compile]

Both train LoRA (r=16, alpha=32, all linear layers, dropout 0) on ``smollm2-135m-instruct`` with
the same ``foldoc`` pairs, encoded once by nichetune (chat template, assistant-only labels), the
same batch size and LR. The baseline is what a user writes first: ``Trainer`` in fp32 with
pad-to-longest batches in random order. nichetune runs with its defaults for sft (bf16 autocast
where the CPU has native bf16 with the frozen base stored in bf16, packing, length grouping, the
output layer only at supervised positions) for the same number of steps, with as many packed
rows per step as hold about the same number of examples, so the two end at comparable loss,
measured on the same held-out pairs. Reported: supervised (loss-bearing) tokens per second and their ratio,
peak RSS growth of each phase (sampled), and model FLOP utilisation against the bf16 and fp32
matmul peak measured here.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from pathlib import Path

import torch


class PeakRss:
    """Samples this process's RSS every 50 ms; ``peak_mb`` is the highest reading above the start."""

    def __init__(self):
        self.start = self.peak = self._rss()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @staticmethod
    def _rss() -> int:
        return int(Path("/proc/self/statm").read_text().split()[1]) * 4096

    def _run(self):
        while not self._stop.wait(0.05):
            self.peak = max(self.peak, self._rss())

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    @property
    def peak_mb(self) -> float:
        return round((self.peak - self.start) / 2**20, 1)


def matmul_peak(dtype: torch.dtype, n: int = 2048, seconds: float = 3.0) -> float:
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    a @ b
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        a @ b
        count += 1
    return 2 * n**3 * count / (time.perf_counter() - start)


def lora_model(path):
    import peft
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    config = peft.LoraConfig(task_type=peft.TaskType.CAUSAL_LM, r=16, lora_alpha=32, lora_dropout=0.0,
                             target_modules="all-linear")
    return peft.get_peft_model(model, config)


def heldout_loss(model, task, items, pad_id, dtype) -> float:
    from nichetune.train.distributed import Dist
    from nichetune.train.loop import evaluate

    return evaluate(model, task, items, batch_size=8, pad_id=pad_id, ctx=Dist(), dtype=dtype)["loss"]


def run_baseline(path, examples, heldout, task, args, pad_id) -> dict:
    from transformers import Trainer, TrainingArguments

    from nichetune.tasks.batching import collate_causal

    model = lora_model(path)
    seen = {"supervised": 0, "inputs": 0, "padded": 0}

    def collate(batch):
        out = collate_causal(batch, pad_id)  # pad to the longest example of the batch
        seen["supervised"] += int((out["labels"][:, 1:] != -100).sum())
        seen["inputs"] += int(out["attention_mask"].sum())
        seen["padded"] += out["input_ids"].numel()
        return out

    targs = TrainingArguments(output_dir=str(args.out / "trainer"), per_device_train_batch_size=args.batch_size,
                              max_steps=args.steps, learning_rate=2e-4, warmup_steps=0, lr_scheduler_type="constant",
                              logging_steps=10**6, save_strategy="no", report_to=[], use_cpu=True,
                              dataloader_num_workers=0, remove_unused_columns=False, seed=0, disable_tqdm=True)
    trainer = Trainer(model=model, args=targs, train_dataset=examples, data_collator=collate)
    with PeakRss() as rss:
        start = time.perf_counter()
        trainer.train()
        seconds = time.perf_counter() - start
    return {"seconds": seconds, **seen, "steps": args.steps, "examples_per_step": args.batch_size,
            "peak_rss_growth_mb": rss.peak_mb, "heldout_loss": heldout_loss(model, task, heldout, pad_id,
                                                                             torch.float32)}


def run_nichetune(path, examples, heldout, task, args, pad_id) -> dict:
    from nichetune.config.recipe import TrainSection
    from nichetune.hardware import pick_dtype
    from nichetune.train.distributed import Dist
    from nichetune.train.loop import FitSpec, fit
    from nichetune.train.model_setup import cast_frozen

    model = lora_model(path)
    dtype = pick_dtype("auto", "cpu")
    if dtype != torch.float32:
        cast_frozen(model, dtype)  # as `nichetune train` does for adapter methods
    items = task.items(examples, args.max_length, True)
    per_row = len(examples) / len(items)
    rows = max(1, round(args.batch_size / per_row))  # packed rows holding about batch-size examples
    cfg = TrainSection(max_steps=args.steps, batch_size=rows, lr=2e-4, warmup=0, schedule="constant",
                       packing=True, group_by_length=True, log_every=10**6, compile=args.compile, max_grad_norm=1.0,
                       weight_decay=0.0)
    spec = FitSpec(cfg=cfg, seed=0, run_dir=args.out / "nichetune", ctx=Dist(), pad_id=pad_id, dtype=dtype,
                   resume=False)
    with PeakRss() as rss:
        start = time.perf_counter()
        result = fit(model, task, items, [], spec)
        seconds = time.perf_counter() - start
    return {"seconds": seconds, "supervised": result.supervised_tokens, "inputs": result.input_tokens,
            "steps": args.steps, "examples_per_step": round(rows * per_row, 2), "packed_rows_per_step": rows,
            "peak_rss_growth_mb": rss.peak_mb, "precision": str(dtype).removeprefix("torch."),
            "heldout_loss": heldout_loss(model, task, heldout, pad_id, dtype)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=24, help="baseline optimizer steps")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--rows", type=int, default=400, help="foldoc pairs to draw from")
    parser.add_argument("--max-length", type=int, default=256, help="truncation, and the packed row length")
    parser.add_argument("--compile", action="store_true", help="also torch.compile nichetune's model")
    parser.add_argument("--out", type=Path, default=Path("/tmp/nichetune-bench-train"))
    args = parser.parse_args()

    import random

    from nichetune.data.catalog import load_dataset
    from nichetune.models.loading import load_tokenizer
    from nichetune.models.resolve import resolve_model
    from nichetune.tasks.causal import CausalTask

    resolved = resolve_model("smollm2-135m-instruct")
    tokenizer = load_tokenizer(resolved)
    rows = load_dataset("foldoc")
    random.Random(0).shuffle(rows)
    task = CausalTask("sft")
    examples = task.encode(rows[: args.rows], tokenizer, args.max_length, train=True)
    heldout = task.encode(rows[args.rows : args.rows + 48], tokenizer, args.max_length, train=False)
    params = sum(p.numel() for p in lora_model(resolved.path).parameters())
    peaks = {"bf16": matmul_peak(torch.bfloat16), "fp32": matmul_peak(torch.float32)}

    base = run_baseline(resolved.path, examples, heldout, task, args, tokenizer.pad_token_id)
    ours = run_nichetune(resolved.path, examples, heldout, task, args, tokenizer.pad_token_id)
    report = {"threads": torch.get_num_threads(), "model_parameters": params,
              "matmul_peak_gflops": {k: round(v / 1e9) for k, v in peaks.items()}}
    for name, r, peak in (("baseline_trainer_fp32", base, peaks["fp32"]),
                          ("nichetune", ours, peaks[ours.get("precision", "fp32").replace("bfloat16", "bf16")
                                                    .replace("float32", "fp32")])):
        flops = 4 * params * r["inputs"]  # LoRA: forward 2N + input-gradient backward 2N per token
        report[name] = {**{k: (round(v, 4) if isinstance(v, float) else v) for k, v in r.items()},
                        "supervised_tokens_per_s": round(r["supervised"] / r["seconds"], 1),
                        "mfu_vs_measured_peak": round(flops / r["seconds"] / peak, 3)}
    report["speedup_supervised_tokens_per_s"] = round(report["nichetune"]["supervised_tokens_per_s"]
                                                      / report["baseline_trainer_fp32"]["supervised_tokens_per_s"], 2)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
