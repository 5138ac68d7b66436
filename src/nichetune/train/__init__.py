"""The training engine: batching, optimisation, schedules, checkpoints, the loop."""
