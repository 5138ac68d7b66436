"""Where logged numbers go: ``metrics.jsonl`` always, TensorBoard and MLflow when the recipe asks."""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import NichetuneError
from ..run.paths import RunPaths


class Tracker:
    """Appends one JSON line per logged step (flushed, so a killed run keeps what it logged)."""

    def __init__(self, run_dir: Path, backends: list[str], *, run_name: str, params: dict):
        self.path = RunPaths(run_dir).metrics
        self._fh = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - closed in close()
        self._tb = None
        self._mlflow = None
        if "tensorboard" in backends:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                raise NichetuneError("train.tracking asks for tensorboard, which is not installed",
                                     hint="pip install 'nichetune[track]'") from None
            self._tb = SummaryWriter(log_dir=str(RunPaths(run_dir).tensorboard))
        if "mlflow" in backends:
            try:
                import mlflow
            except ImportError:
                raise NichetuneError("train.tracking asks for mlflow, which is not installed",
                                     hint="pip install mlflow (MLFLOW_TRACKING_URI picks the server)") from None
            self._mlflow = mlflow
            mlflow.start_run(run_name=run_name)
            mlflow.log_params({k: str(v)[:250] for k, v in params.items()})

    def log(self, step: int, values: dict) -> None:
        self._fh.write(json.dumps({"step": step, **values}) + "\n")
        self._fh.flush()
        flat = _flatten(values)
        if self._tb is not None:
            for key, value in flat.items():
                self._tb.add_scalar(key, value, step)
        if self._mlflow is not None:
            self._mlflow.log_metrics(flat, step=step)

    def close(self) -> None:
        self._fh.close()
        if self._tb is not None:
            self._tb.close()
        if self._mlflow is not None:
            self._mlflow.end_run()


def _flatten(values: dict, prefix: str = "") -> dict[str, float]:
    out: dict[str, float] = {}
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_flatten(value, f"{name}/"))
        elif isinstance(value, int | float) and not isinstance(value, bool):
            out[name] = float(value)
    return out
