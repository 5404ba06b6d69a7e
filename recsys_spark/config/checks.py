"""Value checks shared by the config sections; each raises ConfigError naming the key."""

from __future__ import annotations

from recsys_spark.errors import ConfigError


def positive_or_none(key: str, value: float | None) -> None:
    """Refuse a value that is neither None nor > 0 (NaN included)."""
    if value is not None and not value > 0:  # also refuses NaN
        raise ConfigError(f"{key} must be positive, or null for none; got {value}")


def one_of(key: str, value: str, allowed: tuple[str, ...]) -> None:
    """Refuse a value outside `allowed`."""
    if value not in allowed:
        raise ConfigError(f"config key '{key}' must be one of {', '.join(allowed)}; got '{value}'")
