"""Resident memory of a real MiniLM LoRA run on long rows of varying length must not creep up as steps go by.

Batches of many distinct widths once fragmented the CPU allocator's heap: a run on long news articles grew by about
1 GB in 30 steps and peaked at 9.9 GB over a full run. Widths now come from a few buckets and long batches run in
slices under a token budget, and the command runs under tcmalloc where installed (glibc's heap kept freed activations
resident: 2.2 GB against 1.3 GB); this test runs the real model in its own process and reads the resident memory the
loop logs every other step.
"""

import json
import random
import subprocess
import sys

import pytest
import yaml

pytestmark = pytest.mark.slow

WORDS = ("market shares growth profit bank league match goal player film music award election minister vote "
         "phone software network chip season coach striker budget tax inflation album band concert").split()


def _rows(n: int, seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        label = ("business", "sport", "tech")[i % 3]
        words = [rng.choice(WORDS) for _ in range(rng.randint(40, 420))]
        rows.append({"text": f"{label} " + " ".join(words), "label": label})
    return rows


def test_a_minilm_lora_run_on_long_rows_does_not_grow_in_memory(tmp_path):
    data = tmp_path / "long.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in _rows(400)))
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(yaml.safe_dump({
        "task": "classification", "output_dir": str(tmp_path / "run"), "seed": 0,
        "model": {"name": "minilm-l6", "max_length": 416},
        "data": {"train": str(data), "split": {"ratios": [0.8, 0.1, 0.1]}},
        "method": {"name": "lora", "r": 16, "alpha": 32, "dropout": 0.0, "target_modules": "all-linear"},
        "train": {"max_steps": 60, "batch_size": 16, "lr": 1e-3, "log_every": 2, "eval_every": 1000,
                  "group_by_length": True},
        "eval": {"test": False}}))
    done = subprocess.run([sys.executable, "-m", "nichetune", "train", str(recipe)], capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    rss = {r["step"]: r["rss_mb"] for r in map(json.loads, (tmp_path / "run" / "metrics.jsonl").open())
           if "rss_mb" in r}
    assert len(rss) == 30
    settled = max(v for s, v in rss.items() if s <= 20)  # by then the allocator has seen every bucket width
    late = max(v for s, v in rss.items() if s > 40)
    # measured on 2 cores: flat at about 1.6 GB from step 14 to 120; a width per batch took the peak to 2.4 GB
    assert late - settled < 100, sorted(rss.items())
    peak = max(r.get("peak_rss_mb", 0) for r in map(json.loads, (tmp_path / "run" / "metrics.jsonl").open()))
    hardware = json.loads((tmp_path / "run" / "manifest.json").read_text())["hardware"]
    if hardware["allocator"] in ("tcmalloc", "jemalloc"):
        # the command re-executes under tcmalloc where installed (cli.launch): measured 1,278 MB in fp32 on a 2-core
        # AVX2 machine, against 2,214 MB under glibc's heap
        assert peak < 1600, (hardware, peak)
    else:
        # bf16 where the CPU has it (issue 20's target: under 2 GB); a CPU without native bf16 trains in fp32, whose
        # activations take twice the bytes: 2,214 MB measured on a 2-core AVX2 machine
        assert peak < (2000 if hardware["precision"] == "bfloat16" else 2500), (hardware, peak)
