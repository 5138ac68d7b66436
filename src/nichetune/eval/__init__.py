"""Evaluation: metrics, calibration, conformal sets, slices, significance, and the report."""
