"""``nichetune tune RECIPE``: Optuna search over the recipe's tune.space on the validation metric."""

from __future__ import annotations

from .output import print_json, print_table


def register(sub) -> None:
    p = sub.add_parser(
        "tune", help="search hyperparameters (Optuna TPE + pruning) on the validation metric; resumable",
        description="Trains one run per trial under OUTPUT_DIR-tune/ with the test split switched off, prunes "
        "trials whose validation metric lags the median, and writes best.yaml, trials.csv and tune.html. The "
        "study is stored in OUTPUT_DIR-tune/study.db (SQLite) unless --storage names another database, so a "
        "killed search resumes and several workers can share one study. Needs: pip install 'nichetune[hpo]'.")
    p.add_argument("recipe", help="a recipe with a tune: section (tune.space)")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="recipe overrides, as for train")
    p.add_argument("--trials", type=int, help="finished trials the study should hold (default tune.trials)")
    p.add_argument("--timeout", type=float, help="stop starting new trials after this many seconds")
    p.add_argument("--storage", help="an Optuna database URL shared by workers (default: SQLite in the tune folder)")
    p.add_argument("--study", help="the study name (default: the recipe's output_dir name)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..config.recipe import load_recipe
    from ..tune import run_search

    recipe = load_recipe(args.recipe, args.overrides)
    result = run_search(recipe, trials=args.trials, timeout=args.timeout, storage=args.storage,
                        study_name=args.study)
    if args.json:
        print_json(result)
        return 0
    rows = [{k: (round(v, 5) if isinstance(v, float) else v) for k, v in r.items() if k not in ("run_dir", "worker")}
            for r in result["trials"]]
    if rows:
        print_table(rows, list(dict.fromkeys(k for r in rows for k in r)))
    if "best_recipe" in result:
        print(f"best: trial {result['best_trial']}, validation {result['metric']} {result['best_value']:.6g}")
        print(f"best recipe: {result['best_recipe']}  (nichetune train {result['best_recipe']})")
    print(f"page: {result['page']}")
    return 0
