"""Base models: embedded defaults, local folders and hub ids, loaded safely."""
