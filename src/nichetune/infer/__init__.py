"""Quick checks: generate text and classify, from a base model or a run."""
