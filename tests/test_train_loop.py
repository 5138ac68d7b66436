"""The training loop end to end on tiny models: learning, the run directory, exact resume after a
kill, two processes equal one, bf16 against fp32, early stopping, SWA, progressive unfreezing, merge."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

from nichetune.cli import main
from nichetune.config.recipe import load_recipe
from nichetune.hashing import sha256_file
from nichetune.run import load_run
from nichetune.run.metrics_log import read_metrics
from nichetune.train.run import train
from tiny_data import chat_rows, review_rows, write_jsonl


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("train-data")
    write_jsonl(root / "cls.jsonl", review_rows(120, seed=0, own=4, noise=2))
    write_jsonl(root / "sft.jsonl", chat_rows(48))
    return root


def _cls_recipe(tmp_path, tiny_bert_dir, data_dir, **train):
    return load_recipe(data={
        "task": "classification", "output_dir": str(tmp_path / "run"), "model": {"name": str(tiny_bert_dir)},
        "data": {"train": str(data_dir / "cls.jsonl")}, "method": {"name": "full"},
        "train": {"epochs": 12, "batch_size": 8, "lr": 3e-3, "precision": "fp32", "log_every": 1, **train}})


def _sft_recipe_file(tmp_path, tiny_llama_dir, data_dir, **train) -> Path:
    recipe = {"task": "sft", "output_dir": str(tmp_path / "run"), "model": {"name": str(tiny_llama_dir),
                                                                             "max_length": 64},
              "data": {"train": str(data_dir / "sft.jsonl")}, "method": {"name": "lora", "r": 4, "dropout": 0.0},
              "train": {"epochs": 4, "batch_size": 4, "lr": 5e-3, "log_every": 1, "precision": "fp32",
                        "eval_every": 100, **train}}
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path


def _losses(run_dir: Path) -> dict[int, float]:
    return {r["step"]: r["loss"] for r in read_metrics(run_dir) if "loss" in r}


def test_classification_run_learns_and_leaves_a_readable_run_directory(tmp_path, tiny_bert_dir, data_dir):
    manifest = train(_cls_recipe(tmp_path, tiny_bert_dir, data_dir))
    run = tmp_path / "run"
    assert manifest.result.validation["accuracy"] == 1.0 and manifest.result.test["accuracy"] == 1.0
    # the run directory: every artifact listed with its sha256, splits with manifests, no pickle anywhere
    for rel, digest in manifest.artifacts.items():
        assert sha256_file(run / rel) == digest, rel
    assert {"recipe.yaml", "metrics.jsonl", "model/model.safetensors", "data/train.jsonl"} <= set(manifest.artifacts)
    assert not list(run.rglob("*.bin")) and not list(run.rglob("*.pt")) and not list(run.rglob("*.pkl"))
    rows = {k: sum(1 for _ in open(run / "data" / f"{k}.jsonl")) for k in ("train", "validation", "test")}
    assert rows == manifest.data.rows and sum(rows.values()) == 120
    assert json.loads((run / "data" / "train.jsonl.manifest.json").read_text())["rows"] == rows["train"]
    steps = [r["step"] for r in read_metrics(run) if "loss" in r]
    assert steps == list(range(1, manifest.result.steps + 1))
    assert load_recipe(run / "recipe.yaml").model_dump() == _cls_recipe(tmp_path, tiny_bert_dir, data_dir).model_dump()
    # the saved model reproduces the recorded validation numbers
    loaded = load_run(run)
    model, tokenizer = loaded.model, loaded.tokenizer
    val = [json.loads(line) for line in open(run / "data" / "validation.jsonl")]
    with torch.no_grad():
        enc = tokenizer([r["text"] for r in val], padding=True, return_tensors="pt")
        pred = model(**enc).logits.argmax(-1).tolist()
    assert [model.config.id2label[p] for p in pred] == [r["label"] for r in val]
    # a finished run is never overwritten by accident
    with pytest.raises(Exception, match="finished run"):
        train(_cls_recipe(tmp_path, tiny_bert_dir, data_dir))


def test_a_killed_run_resumes_with_identical_per_step_losses(tmp_path, tiny_llama_dir, data_dir):
    recipe = _sft_recipe_file(tmp_path, tiny_llama_dir, data_dir, save_every=4)
    cmd = [sys.executable, "-m", "nichetune", "train", str(recipe)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    subprocess.run([*cmd, f"output_dir={tmp_path / 'whole'}"], check=True, env=env, capture_output=True)
    killer = ("import sys; from nichetune.config.recipe import load_recipe; from nichetune.train.run import train; "
              "from tiny_data import kill_at; train(load_recipe(sys.argv[1], sys.argv[2:]), on_step=kill_at(10))")
    killed = subprocess.run([sys.executable, "-c", killer, str(recipe), f"output_dir={tmp_path / 'resumed'}"],
                            env={**env, "PYTHONPATH": str(Path(__file__).parent)}, capture_output=True)
    assert killed.returncode == -9
    assert max(_losses(tmp_path / "resumed")) == 10  # it logged steps 9 and 10 after its last checkpoint (8)
    assert not (tmp_path / "resumed" / "manifest.json").exists()
    # what a kill leaves: a half-written checkpoint under its temporary name, and a damaged newer one
    ckpts = tmp_path / "resumed" / "checkpoints"
    (ckpts / ".step-0000012.x1y2.partial").mkdir()
    shutil.copytree(ckpts / "step-0000008", ckpts / "step-0000009")
    (ckpts / "step-0000009" / "trainable.safetensors").write_bytes(b"damaged")
    again = subprocess.run([*cmd, f"output_dir={tmp_path / 'resumed'}"], check=True, env=env, capture_output=True,
                           text=True)
    assert "removed checkpoints/.step-0000012.x1y2.partial" in again.stderr
    assert "resuming from checkpoints/step-0000008; skipped step-0000009 (" in again.stderr
    assert not list(ckpts.glob(".*.partial"))
    whole, resumed = _losses(tmp_path / "whole"), _losses(tmp_path / "resumed")
    assert sorted(whole) == [r["step"] for r in read_metrics(tmp_path / "resumed") if "loss" in r]  # no repeats
    assert max(abs(whole[s] - resumed[s]) for s in whole) <= 1e-6
    assert json.loads((tmp_path / "resumed" / "manifest.json").read_text())["result"]["resumed_from"] == "step-0000008"


def test_two_processes_give_the_losses_of_one_with_the_same_global_batch(tmp_path, tiny_llama_dir, data_dir):
    recipe = _sft_recipe_file(tmp_path, tiny_llama_dir, data_dir, epochs=2)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    subprocess.run([sys.executable, "-m", "nichetune", "train", str(recipe), f"output_dir={tmp_path / 'one'}",
                    "train.grad_accum=2"], check=True, env=env, capture_output=True)
    two = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
                          "--master_port", "29517", "-m", "nichetune", "train", str(recipe),
                          f"output_dir={tmp_path / 'two'}", "train.grad_accum=1"], env=env, capture_output=True,
                         text=True)
    assert two.returncode == 0, two.stderr[-2000:]
    one, both = _losses(tmp_path / "one"), _losses(tmp_path / "two")
    assert sorted(one) == sorted(both) and len(one) == 10  # 38 rows, 4 per micro-batch, 2 per step, 2 epochs
    assert max(abs(one[s] - both[s]) for s in one) < 1e-5
    manifest = json.loads((tmp_path / "two" / "manifest.json").read_text())
    assert manifest["hardware"]["world_size"] == 2


def test_bf16_autocast_tracks_fp32_losses(tmp_path, tiny_llama_dir, data_dir):
    recipe = _sft_recipe_file(tmp_path, tiny_llama_dir, data_dir, epochs=1)
    for precision in ("fp32", "bf16"):
        assert main(["train", str(recipe), f"output_dir={tmp_path / precision}", f"train.precision={precision}"]) == 0
    fp32, bf16 = _losses(tmp_path / "fp32"), _losses(tmp_path / "bf16")
    assert json.loads((tmp_path / "bf16" / "manifest.json").read_text())["hardware"]["precision"] == "bfloat16"
    assert fp32 != bf16  # autocast really ran in bf16 ...
    assert all(abs(fp32[s] - bf16[s]) <= 0.02 * fp32[s] for s in fp32)  # ... and stays within 2% of fp32


def test_packing_trains_on_the_same_supervised_tokens(tmp_path, tiny_llama_dir, data_dir):
    recipe = _sft_recipe_file(tmp_path, tiny_llama_dir, data_dir, epochs=1, batch_size=4)
    for packing in ("false", "true"):
        assert main(["train", str(recipe), f"output_dir={tmp_path / packing}", f"train.packing={packing}"]) == 0
    plain, packed = (json.loads((tmp_path / p / "manifest.json").read_text()) for p in ("false", "true"))
    tokens = [sum(r["supervised_tokens"] for r in read_metrics(tmp_path / p) if "loss" in r) for p in ("false", "true")]
    assert tokens[0] == tokens[1] > 0
    assert packed["data"]["train_items"] < plain["data"]["train_items"]
    assert packed["result"]["steps"] < plain["result"]["steps"]


def test_early_stopping_ends_with_the_best_checkpoint(tmp_path, tiny_bert_dir, data_dir):
    # a learning rate this high makes validation loss worsen after the first evaluations
    recipe = _cls_recipe(tmp_path, tiny_bert_dir, data_dir, lr=0.05, epochs=30, eval_every=3,
                         early_stopping={"patience": 2}, keep_checkpoints=1)
    recipe.eval.metric = "loss"
    manifest = train(recipe)
    result = manifest.result.model_dump()
    evals = [r for r in read_metrics(tmp_path / "run") if "eval" in r]
    best = min(evals, key=lambda r: r["eval"]["loss"])
    assert result["stopped_early"] and result["steps"] < result["planned_steps"]
    assert evals[-1]["step"] - best["step"] == 2 * 3  # patience 2 evaluations of every 3 steps
    assert result["final_weights"] == "best" and result["best"]["best_step"] == best["step"]
    assert result["validation"]["loss"] == pytest.approx(best["eval"]["loss"], abs=1e-6)
    # the best checkpoint survives keep_checkpoints=1
    assert (tmp_path / "run" / "checkpoints" / f"step-{best['step']:07d}").is_dir()


def test_swa_averages_the_last_k_evaluations(tmp_path, tiny_bert_dir, data_dir):
    manifest = train(_cls_recipe(tmp_path, tiny_bert_dir, data_dir, epochs=4, eval_every=5, swa_last_k=3))
    assert manifest.result.final_weights == "swa"
    last = sorted((tmp_path / "run" / "checkpoints").glob("step-*"))[-1]
    snaps = load_file(str(last / "extra.safetensors"))
    assert sorted({k.split("::")[0] for k in snaps}) == ["swa0", "swa1", "swa2"]
    final = load_file(str(tmp_path / "run" / "model" / "model.safetensors"))
    name = "classifier.weight"
    mean = torch.stack([snaps[f"swa{i}::{name}"] for i in range(3)]).mean(0)
    assert torch.allclose(final[name], mean, atol=1e-6)
    assert not torch.allclose(final[name], snaps[f"swa2::{name}"])


def test_progressive_unfreezing_opens_one_block_per_epoch(tmp_path, tiny_bert_dir, data_dir):
    recipe = _cls_recipe(tmp_path, tiny_bert_dir, data_dir, epochs=2)
    recipe.method = load_recipe(data={**recipe.model_dump(), "method": {"name": "freeze", "progressive": True}}).method
    train(recipe)
    base = load_file(str(tiny_bert_dir / "model.safetensors"))
    tuned = load_file(str(tmp_path / "run" / "model" / "model.safetensors"))

    def changed(fragment: str) -> bool:
        keys = [k for k in base if fragment in k]
        return any(not torch.equal(base[k], tuned[f"bert.{k}" if f"bert.{k}" in tuned else k]) for k in keys)

    assert not changed("embeddings.") and not changed("layer.0.")  # epoch 0: head; epoch 1: + top block
    assert changed("layer.1.")


def test_merge_writes_a_plain_model_with_identical_outputs(tmp_path, tiny_llama_dir, data_dir):
    recipe = _sft_recipe_file(tmp_path, tiny_llama_dir, data_dir, epochs=1)
    assert main(["train", str(recipe)]) == 0
    assert main(["merge", str(tmp_path / "run"), "--out", str(tmp_path / "merged")]) == 0
    from transformers import AutoModelForCausalLM

    loaded = load_run(tmp_path / "run")
    adapted, tokenizer = loaded.model, loaded.tokenizer
    merged = AutoModelForCausalLM.from_pretrained(tmp_path / "merged")
    ids = tokenizer("what does compiler mean in computing", return_tensors="pt")["input_ids"]
    with torch.no_grad():
        assert torch.allclose(adapted(input_ids=ids).logits, merged(input_ids=ids).logits, atol=1e-5)
    assert (tmp_path / "merged" / "chat_template.jinja").is_file() or tokenizer.chat_template
    assert not any(p.suffix in (".bin", ".pt") for p in (tmp_path / "merged").iterdir())


def test_adapters_cannot_be_merged_and_say_why(tmp_path, tiny_llama_dir, data_dir, capsys):
    recipe = _sft_recipe_file(tmp_path, tiny_llama_dir, data_dir, max_steps=2)
    assert main(["train", str(recipe), "method.name=adapter", "method.bottleneck=4"]) == 0
    assert main(["merge", str(tmp_path / "run"), "--out", str(tmp_path / "merged")]) == 1
    assert "cannot be merged" in capsys.readouterr().err and not (tmp_path / "merged").exists()


@pytest.mark.parametrize("task", ["classification", "sft", "completion"])
def test_init_writes_a_recipe_that_validates(tmp_path, task):
    out = tmp_path / f"{task}.yaml"
    assert main(["init", "--task", task, "--out", str(out)]) == 0
    text = out.read_text()
    assert text.startswith("# Run with: nichetune train ") and load_recipe(out).task == task
    assert main(["init", "--task", task, "--out", str(out)]) == 1  # never overwritten silently


def test_every_shipped_recipe_loads_and_opens_with_its_command():
    configs = sorted(Path(__file__).parents[1].joinpath("configs").glob("*.yaml"))
    assert len(configs) >= 2
    for path in configs:
        first = path.read_text().splitlines()[0]
        recipe = load_recipe(path)
        verb = "tune" if recipe.tune else "train"  # a recipe with a search space opens with its search
        assert first.startswith(f"# Run with: nichetune {verb} configs/{path.name}"), path


METHOD_SETTINGS = {
    "full": {}, "freeze": {"layers": 1}, "lora": {"r": 4}, "dora": {"r": 4}, "adapter": {"bottleneck": 4},
    "prompt_tuning": {"num_virtual_tokens": 4}, "prefix_tuning": {"num_virtual_tokens": 4},
    "p_tuning": {"num_virtual_tokens": 4, "encoder_hidden_size": 8}, "ia3": {},
}


@pytest.mark.parametrize("method", sorted(METHOD_SETTINGS))
def test_every_method_trains_in_bf16_and_its_run_reloads(tmp_path, tiny_llama_dir, data_dir, method):
    from nichetune.tasks.causal import CausalTask
    from nichetune.train.distributed import Dist
    from nichetune.train.loop import evaluate

    recipe = _sft_recipe_file(tmp_path, tiny_llama_dir, data_dir, max_steps=3, precision="bf16")
    overrides = [f"method.name={method}", *(f"method.{k}={v}" for k, v in METHOD_SETTINGS[method].items())]
    assert main(["train", str(recipe), *overrides]) == 0
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    before, after = manifest["result"]["validation_before"]["loss"], manifest["result"]["validation"]["loss"]
    assert after < before  # three steps at a high LR already move the validation loss
    loaded = load_run(tmp_path / "run")
    model, tokenizer, run_recipe = loaded.model, loaded.tokenizer, loaded.recipe
    task = CausalTask(chat=True, select_positions=method not in ("prompt_tuning", "prefix_tuning", "p_tuning"))
    rows = [json.loads(line) for line in open(tmp_path / "run" / "data" / "validation.jsonl")]
    items = task.encode(rows, tokenizer, run_recipe.model.max_length, train=False)
    again = evaluate(model, task, items, batch_size=8, pad_id=tokenizer.pad_token_id, ctx=Dist(), dtype=torch.float32)
    assert again["loss"] == pytest.approx(after, rel=0.02)  # fp32 reload vs bf16 training-time evaluation


def test_adapter_runs_serve_generate_and_classify_with_their_own_tokenizer(tmp_path, tiny_llama_dir, tiny_bert_dir,
                                                                           data_dir, capsys):
    recipe = _sft_recipe_file(tmp_path, tiny_llama_dir, data_dir, epochs=12, lr=2e-2)
    assert main(["train", str(recipe)]) == 0
    capsys.readouterr()
    assert main(["generate", str(tmp_path / "run"), "what does compiler mean in computing", "--max-new-tokens", "8",
                 "--dtype", "fp32"]) == 0
    assert "compiler translates" in capsys.readouterr().out  # it learned the answer, through the run's template

    cls = _cls_recipe(tmp_path / "c", tiny_bert_dir, data_dir, epochs=15, lr=1e-2)
    cls.method = load_recipe(data={**cls.model_dump(), "method": {"name": "lora", "r": 4,
                                                                  "target_modules": ["query", "value"]}}).method
    train(cls)
    assert main(["classify", str(tmp_path / "c" / "run"), "terrible nausea and headaches", "no side effects",
                 "--json"]) == 0
    preds = json.loads(capsys.readouterr().out)
    assert [p["label"] for p in preds] == ["negative", "positive"]


def test_tensorboard_receives_the_logged_numbers(tmp_path, tiny_llama_dir, data_dir):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    recipe = _sft_recipe_file(tmp_path, tiny_llama_dir, data_dir, max_steps=4, tracking=["tensorboard"])
    assert main(["train", str(recipe)]) == 0
    events = EventAccumulator(str(tmp_path / "run" / "tensorboard"))
    events.Reload()
    logged = {e.step: e.value for e in events.Scalars("loss")}
    assert logged == pytest.approx(_losses(tmp_path / "run"), rel=1e-6)
    assert "eval_before/loss" in events.Tags()["scalars"]


def test_a_missing_tracking_extra_is_named(tmp_path, tiny_llama_dir, data_dir, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "mlflow", None)  # as if not installed
    recipe = _sft_recipe_file(tmp_path, tiny_llama_dir, data_dir, max_steps=1, tracking=["mlflow"])
    assert main(["train", str(recipe)]) == 1
    assert "pip install mlflow" in capsys.readouterr().err


def test_a_decoder_learns_classification_with_a_head(tmp_path, tiny_llama_dir, data_dir):
    recipe = load_recipe(data={
        "task": "classification", "output_dir": str(tmp_path / "run"), "model": {"name": str(tiny_llama_dir)},
        "data": {"train": str(data_dir / "cls.jsonl")}, "method": {"name": "lora", "r": 4},
        "train": {"epochs": 10, "batch_size": 8, "lr": 1e-2, "precision": "fp32"}})
    manifest = train(recipe)
    assert manifest.base_model.architectures == ["LlamaForCausalLM"]
    assert manifest.result.validation["accuracy"] == 1.0
    model = load_run(tmp_path / "run").model
    assert type(model.get_base_model()).__name__ == "LlamaForSequenceClassification"


def test_dropout_override_and_class_weights_reach_the_model_and_the_loss(tmp_path, tiny_bert_dir, data_dir):
    from nichetune.tasks.classification import ClassificationTask
    from nichetune.tasks.loss import classification_loss_sum

    recipe = _cls_recipe(tmp_path, tiny_bert_dir, data_dir, max_steps=1, dropout=0.3)
    train(recipe)
    config = json.loads((tmp_path / "run" / "model" / "config.json").read_text())
    # attention dropout stays off unless asked for: it would take attention off PyTorch's fused kernels
    assert (config["hidden_dropout_prob"], config["attention_probs_dropout_prob"]) == (0.3, 0.0)
    recipe = _cls_recipe(tmp_path / "b", tiny_bert_dir, data_dir, max_steps=1, dropout=0.3, attention_dropout=0.2)
    train(recipe)
    config = json.loads((tmp_path / "b" / "run" / "model" / "config.json").read_text())
    assert (config["hidden_dropout_prob"], config["attention_probs_dropout_prob"]) == (0.3, 0.2)

    task = ClassificationTask(["a", "b"], class_weights=True)
    rows = [{"text": "the drug", "label": "a"}] * 3 + [{"text": "nausea", "label": "b"}]
    from transformers import AutoTokenizer

    examples = task.encode(rows, AutoTokenizer.from_pretrained(tiny_bert_dir), 16, train=True)
    assert task.class_weights.tolist() == pytest.approx([4 / (2 * 3), 4 / (2 * 1)])
    batch = task.collate(examples, 0)
    _, total = classification_loss_sum(torch.zeros(4, 2), batch["labels"], weights=batch["weights"],
                                       class_weights=task.class_weights)
    assert sum(task.units(e) for e in examples) == pytest.approx(total)  # the step's denominator is the loss's


def test_a_deterministic_run_is_bit_reproducible_on_one_machine(tmp_path, tiny_bert_dir, data_dir):
    """Same recipe and seed, `train.deterministic: true`, dropout on, the CPU's own precision: identical weight bytes
    and identical per-step losses, twice."""
    digests, losses = [], []
    for name in ("a", "b"):
        recipe = load_recipe(data={
            "task": "classification", "output_dir": str(tmp_path / name), "model": {"name": str(tiny_bert_dir)},
            "data": {"train": str(data_dir / "cls.jsonl")}, "method": {"name": "lora", "r": 4, "dropout": 0.1},
            "train": {"epochs": 2, "batch_size": 8, "lr": 3e-3, "precision": "auto", "deterministic": True,
                      "log_every": 1, "lexical": "stack"}})
        train(recipe)
        digests.append({p.name: sha256_file(p) for p in sorted((tmp_path / name / "adapter").iterdir())})
        losses.append(_losses(tmp_path / name))
    assert digests[0] == digests[1] and "adapter_model.safetensors" in digests[0]
    assert losses[0] == losses[1] and len(losses[0]) > 10


def test_gradient_checkpointing_trains_the_same_losses(tmp_path, tiny_llama_dir, data_dir):
    recipe = _sft_recipe_file(tmp_path, tiny_llama_dir, data_dir, epochs=1)
    for every in ("0", "1"):
        assert main(["train", str(recipe), f"output_dir={tmp_path / every}", f"train.gradient_checkpointing={every}"]) \
            == 0
    plain, recomputed = _losses(tmp_path / "0"), _losses(tmp_path / "1")
    assert len(plain) >= 3 and plain.keys() == recomputed.keys()
    assert max(abs(plain[s] - recomputed[s]) for s in plain) < 1e-5  # the same gradients, step after step


def test_gradient_checkpointing_keeps_fewer_activations_for_the_backward_pass(tiny_llama_dir):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from nichetune.train.model_setup import checkpoint_activations

    def saved_bytes(every: int) -> int:
        torch.manual_seed(0)
        model = get_peft_model(AutoModelForCausalLM.from_pretrained(tiny_llama_dir),
                               LoraConfig(r=4, target_modules="all-linear"))
        if every:
            checkpoint_activations(model, every)
        model.train()
        total = 0

        def pack(t):
            nonlocal total
            total += t.numel() * t.element_size()
            return t

        ids = torch.randint(3, 50, (2, 64))
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for n, p in model.named_parameters() if "lora_B" in n)
        return total

    off, every_layer, every_other = saved_bytes(0), saved_bytes(1), saved_bytes(2)
    assert every_layer < 0.5 * off  # both layers recomputed: only their inputs (and the output layer's) stay
    assert every_layer < every_other < off  # one layer of two recomputed


def test_gradient_checkpointing_accepts_true_and_refuses_negative_counts():
    from pydantic import ValidationError

    from nichetune.config.recipe import TrainSection

    assert TrainSection(gradient_checkpointing=True).gradient_checkpointing == 1
    assert TrainSection(gradient_checkpointing=False).gradient_checkpointing == 0
    with pytest.raises(ValidationError):
        TrainSection(gradient_checkpointing=-1)


def test_wise_ft_blends_the_final_weights_with_the_start_and_survives_a_resume(tmp_path, tiny_bert_dir, data_dir):
    """train.wise_ft: (1 - a) * final + a * start, with the start kept in each checkpoint for a resumed run."""
    plain = train(_cls_recipe(tmp_path / "a", tiny_bert_dir, data_dir, epochs=2, eval_every=5))
    blended = train(_cls_recipe(tmp_path / "b", tiny_bert_dir, data_dir, epochs=2, eval_every=5,
                                wise_ft=0.25))
    assert plain.result.final_weights == "last" and blended.result.final_weights == "last+wise0.25"
    first = sorted((tmp_path / "b" / "run" / "checkpoints").glob("step-*"))[0]
    start = {k.split("::", 1)[1]: t for k, t in load_file(str(first / "extra.safetensors")).items()}
    a = load_file(str(tmp_path / "a" / "run" / "model" / "model.safetensors"))
    b = load_file(str(tmp_path / "b" / "run" / "model" / "model.safetensors"))
    base = load_file(str(tiny_bert_dir / "model.safetensors"))
    name = "bert.encoder.layer.0.attention.self.query.weight"
    assert torch.equal(start[name], base[name.removeprefix("bert.")])  # the start: the base, before any step
    assert torch.allclose(b[name], 0.75 * a[name] + 0.25 * start[name], atol=1e-6)
    assert not torch.allclose(b[name], a[name], atol=1e-4)
    # killed after the first checkpoint and resumed: the start comes back from the checkpoint, the result is the same
    for stale in sorted((tmp_path / "b" / "run" / "checkpoints").glob("step-*"))[1:]:
        shutil.rmtree(stale)
    (tmp_path / "b" / "run" / "manifest.json").unlink()
    shutil.rmtree(tmp_path / "b" / "run" / "model")
    resumed = train(_cls_recipe(tmp_path / "b", tiny_bert_dir, data_dir, epochs=2, eval_every=5,
                                wise_ft=0.25))
    assert resumed.result.resumed_from == first.name
    again = load_file(str(tmp_path / "b" / "run" / "model" / "model.safetensors"))
    assert torch.allclose(again[name], b[name], atol=1e-6)
