"""Recommendation models: affinity, ALS, item-based, popularity, fallback, hybrid, top-N."""
