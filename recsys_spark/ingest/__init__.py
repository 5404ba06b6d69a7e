"""Ingest raw interaction logs into Delta: validate, quarantine, deduplicate, index, merge."""
