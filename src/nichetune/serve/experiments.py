"""Experiments: a served name split between arms by a sticky hash, and shadow challengers.

A request to an experiment's name is answered by one of its arms: ``sha256(salt:unit)`` mapped to [0, 1) picks
the arm by cumulative weight (arms in name order), so the same unit (the request's ``user``) always gets the same
arm, and changing the salt reshuffles everyone. A request without a unit is assigned by its request id (not
sticky). A shadow challenger answers the same texts in the background after the reply has gone; its answers are
logged (``shadow``), never returned.
"""

from __future__ import annotations

import hashlib

from pydantic import BaseModel, ConfigDict, Field, model_validator


class Experiment(BaseModel):
    """``arms``: served model name -> weight (any positive numbers; shares are weight / total)."""

    model_config = ConfigDict(extra="forbid")
    arms: dict[str, float] = Field(min_length=2)
    salt: str = "nichetune"

    @model_validator(mode="after")
    def _positive(self) -> Experiment:
        bad = [a for a, w in self.arms.items() if not w > 0]
        if bad:
            raise ValueError(f"arm {bad[0]!r} needs a weight above 0")
        return self

    def shares(self) -> dict[str, float]:
        total = sum(self.arms.values())
        return {a: self.arms[a] / total for a in sorted(self.arms)}


def bucket(salt: str, unit: str) -> float:
    """A unit's place in [0, 1): the first 60 bits of ``sha256(salt:unit)``."""
    return int(hashlib.sha256(f"{salt}:{unit}".encode()).hexdigest()[:15], 16) / 16**15


def assign(experiment: Experiment, unit: str) -> str:
    """The arm that answers ``unit``: the same one every time for the same salt."""
    point, edge = bucket(experiment.salt, unit), 0.0
    shares = experiment.shares()
    for arm, share in shares.items():
        edge += share
        if point < edge:
            return arm
    return list(shares)[-1]


def parse_experiment(spec: str) -> tuple[str, Experiment]:
    """``NAME=ARM:WEIGHT,ARM:WEIGHT[,salt=SALT]`` (weights default to equal).

    Raises:
        ValueError: the spec does not have that shape.
    """
    name, _, rest = spec.partition("=")
    if not name or not rest:
        raise ValueError(f"--experiment {spec}: give NAME=ARM:WEIGHT,ARM:WEIGHT")
    arms, salt = {}, "nichetune"
    for part in rest.split(","):
        key, _, value = part.partition(":") if not part.startswith("salt=") else ("salt", "", part[5:])
        if key == "salt":
            salt = value
            continue
        try:
            arms[key] = float(value) if value else 1.0
        except ValueError:
            raise ValueError(f"--experiment {spec}: {value!r} is not a weight") from None
    return name, Experiment(arms=arms, salt=salt)
