"""``nichetune train``, ``nichetune init`` and ``nichetune merge``."""

from __future__ import annotations

from pathlib import Path

from .output import print_json, print_table


def register(sub) -> None:
    p = sub.add_parser(
        "train", help="adapt a base model to the domain with a recipe",
        description="Train the recipe and leave a run directory (recipe.yaml, data/, checkpoints/, "
        "metrics.jsonl, adapter/ or model/, manifest.json). An unfinished run with the same recipe resumes "
        "from its newest verified checkpoint. Runs unchanged under torchrun / accelerate launch.",
        epilog="example: nichetune train configs/bbc-news-lora.yaml train.lr=1e-4 method.r=16")
    p.add_argument("recipe", help="recipe YAML (nichetune init --task TASK writes one)")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="override recipe keys, e.g. train.epochs=1")
    p.add_argument("--fresh", action="store_true", help="replace an existing run in output_dir instead of resuming")
    p.add_argument("--check", action="store_true", help="validate the recipe and print it resolved; train nothing")
    p.add_argument("--json", action="store_true", help="print the run manifest as JSON")
    p.set_defaults(func=run_train)

    p = sub.add_parser("init", help="write a commented starter recipe",
                       description="Write a recipe with every section explained; it validates as written.")
    p.add_argument("--task", required=True, choices=["classification", "sft", "completion"])
    p.add_argument("--dataset", help="use a built-in dataset (nichetune data list) instead of a file")
    p.add_argument("--model", help="base model (default: minilm-l6 for classification, else smollm2-135m-instruct)")
    p.add_argument("--out", help="where to write it (default: <dataset or my-domain>-<task>.yaml)")
    p.add_argument("--force", action="store_true", help="overwrite an existing file")
    p.set_defaults(func=run_init)

    p = sub.add_parser("merge", help="fold a run's adapter into the base model and write a plain model",
                       description="LoRA, DoRA and IA3 merge exactly; full and freeze runs are copied; bottleneck "
                       "adapters and virtual-token methods cannot be merged (serve them with their base).")
    p.add_argument("run_dir", help="a finished run directory")
    p.add_argument("--out", required=True, help="folder for the merged model (safetensors + tokenizer)")
    p.set_defaults(func=run_merge)


def run_train(args) -> int:
    from ..config.recipe import load_recipe
    from ..run.directory import recipe_text
    from ..train.run import check_recipe, train

    recipe = load_recipe(args.recipe, args.overrides)
    if args.check:  # train() runs the same checks before any work
        check_recipe(recipe)
        print(recipe_text(recipe), end="")
        return 0
    manifest = train(recipe, fresh=args.fresh)
    if not manifest:  # a non-zero rank of a distributed run
        return 0
    if args.json:
        print_json(manifest.model_dump(mode="json"))
        return 0
    result, params = manifest.result, manifest.parameters
    rows = [{"split": name, **{k: round(v, 4) for k, v in metrics.items()}}
            for name, metrics in (("validation", result.validation), ("test", result.test)) if metrics]
    if rows:
        print_table(rows, list(rows[0]))
    print(f"method {manifest.method_name}: {params.trainable:,} of {params.total:,} parameters trained "
          f"({100 * params.trainable_share:.2f}%), {result.steps} steps in {result.train_seconds:.0f} s, "
          f"final weights: {result.final_weights}")
    print(f"run directory: {recipe.output_dir}")
    return 0


def run_init(args) -> int:
    import yaml

    from ..atomic import atomic_write_text
    from ..config.recipe import load_recipe
    from ..config.starter import starter_recipe
    from ..errors import NichetuneError

    text = starter_recipe(args.task, dataset=args.dataset, model=args.model)
    out = Path(args.out or f"{args.dataset or 'my-domain'}-{args.task}.yaml")
    if out.exists() and not args.force:
        raise NichetuneError(f"{out} exists", hint="pass --force to overwrite it, or --out another path")

    load_recipe(data=yaml.safe_load(text))  # a starter that does not validate is a bug
    atomic_write_text(out, text)
    print(f"wrote {out}; edit it, then: nichetune train {out}")
    return 0


def run_merge(args) -> int:
    from ..export import merge_run

    out = merge_run(args.run_dir, args.out)
    print(f"merged model written to {out} (load it like any transformers model folder)")
    return 0
