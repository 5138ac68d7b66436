"""Watching served models: prediction-log readers, drift reports per window and slice, A/B and shadow experiments
with always-valid tests, and the retrain loop."""
