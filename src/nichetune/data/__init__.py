"""Data ingestion: readers, task schemas, validation with quarantine, built-in datasets."""
