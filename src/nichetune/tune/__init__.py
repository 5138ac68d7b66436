"""``nichetune tune``: hyperparameter search over a recipe's ``tune.space`` with Optuna."""

from .search import run_search, trial_recipe, tune_dir

__all__ = ["run_search", "trial_recipe", "tune_dir"]
