"""Data that feeds the models: the synthetic sample generator and evaluation splits."""
