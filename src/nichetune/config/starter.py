"""Commented starter recipes written by ``nichetune init --task TASK``."""

from __future__ import annotations

_DEFAULTS = {
    "classification": {"model": "minilm-l6", "max_length": 256, "data": "data/train.jsonl",
                       "fields": "    text: text             # the input text\n"
                                 "    label: label           # the class name\n",
                       "method": "  name: lora\n  r: 8\n  alpha: 16\n  dropout: 0.05\n"
                                 "  target_modules: [query, key, value, dense]\n",
                       "lr": "5.0e-4", "epochs": 5, "batch": 16, "packing": "false", "metric": "accuracy"},
    "sft": {"model": "smollm2-135m-instruct", "max_length": 512, "data": "data/chat.jsonl",
            "fields": "    messages: messages     # OpenAI-style [{role, content}, ...]; Alpaca and\n"
                      "                           # ShareGPT rows and prompt/response pairs are converted\n",
            "method": "  name: lora\n  r: 16\n  alpha: 32\n  dropout: 0.05\n  target_modules: all-linear\n",
            "lr": "2.0e-4", "epochs": 2, "batch": 8, "packing": "true", "metric": "loss"},
    "completion": {"model": "smollm2-135m-instruct", "max_length": 512, "data": "data/corpus.jsonl",
                   "fields": "    text: text             # raw domain text, one document per row\n",
                   "method": "  name: lora\n  r: 16\n  alpha: 32\n  dropout: 0.05\n  target_modules: all-linear\n",
                   "lr": "2.0e-4", "epochs": 1, "batch": 8, "packing": "true", "metric": "loss"},
}


def starter_recipe(task: str, *, dataset: str | None = None, model: str | None = None,
                   output_dir: str | None = None) -> str:
    """A recipe for ``task`` with every section present and explained; it validates as is."""
    d = _DEFAULTS[task]
    name = dataset or "my-domain"
    source = (f"  dataset: {dataset}          # a built-in dataset (nichetune data list), split below\n"
              if dataset else
              f"  train: {d['data']}   # JSONL, JSON, CSV/TSV, Parquet, or a folder of LABEL/*.txt\n"
              "  # validation: data/validation.jsonl   # optional; otherwise split from train\n"
              "  # test: data/test.jsonl               # optional; otherwise split from train\n")
    return f"""# Run with: nichetune train {name}-{task}.yaml   (override any key: train.lr=1e-4 method.r=16)
# Starter recipe for a {task} run. Every key is checked when the recipe loads; a wrong key or
# value fails with its path and the allowed values.
task: {task}
output_dir: runs/{name}-{task}  # the run directory: weights, metrics.jsonl, checkpoints, manifest
seed: 0

model:
  name: {model or d['model']}  # embedded name (nichetune models list), a local folder, or a hub id
  max_length: {d['max_length']}            # tokens per example; longer ones are truncated (sft keeps EOS)
  trust_remote_code: false   # custom model code is refused unless you turn this on

data:
{source}  split:
    ratios: [0.8, 0.1, 0.1]  # train / validation / test when they are split here
    stratify: true           # keep label shares equal across splits (classification)
    group_field: group       # rows sharing a group (patient, drug, term) stay in one split
  fields:
{d['fields']}  # limit: 500                # train on at most this many rows (quick experiments)

method:                      # full | freeze | lora | dora | adapter | prompt_tuning | prefix_tuning
{d['method']}                             # | p_tuning | ia3 (see the README's methods table)

train:
  epochs: {d['epochs']}
  batch_size: {d['batch']}              # examples per micro-batch per process
  grad_accum: 1              # micro-batches per optimizer step
  # max_batch_tokens: 1024   # tokens per forward pass (CPU default: 4096 for MiniLM, fewer for bigger bodies)
  # gradient_checkpointing: true  # recompute activations in the backward pass: less memory, slower
  # attention_dropout: 0.0   # default 0: any other value takes attention off the fused kernels (slow, memory)
  lr: {d['lr']}
  # head_lr: 1.0e-3          # a separate LR for a new classification head
  # layer_decay: 0.9         # layer-wise LR decay from the top block down
  weight_decay: 0.01         # never applied to biases and norms
  warmup: 0.06               # a ratio of the steps if < 1, else a number of steps
  schedule: cosine           # cosine | linear | constant
  max_grad_norm: 1.0
  label_smoothing: 0.0
  precision: auto            # auto = bf16 where the CPU/GPU multiplies it fast, else fp32
  packing: {d['packing']}             # sft/completion: several examples per row, no cross-attention
  group_by_length: true      # batch similar lengths together (less padding)
  # early_stopping: {{patience: 3}}  # stop when eval.metric stops improving; keep the best weights
  # swa_last_k: 3            # average the weights of the last 3 evaluations
  log_every: 10
  keep_checkpoints: 2        # plus the best one
  tracking: []               # [tensorboard] and/or [mlflow] when installed

eval:
  metric: {d['metric']}           # picks the best checkpoint
  batch_size: 32
  test: true                 # score the test split once, after training
"""
