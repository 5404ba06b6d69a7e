"""Reads and writes: Delta tables, raw log files. Transforms never touch storage directly."""
