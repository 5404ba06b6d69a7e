"""Config sections of the models: ALS (and its tuning), serving, item similarities, EASE."""

from __future__ import annotations

from dataclasses import dataclass, field

from recsys_spark.config.checks import one_of, positive_or_none
from recsys_spark.errors import ConfigError


@dataclass(frozen=True)
class AlsTuningConfig:
    """Search over rank, regParam and alpha, scored by NDCG@10 on a validation part."""

    enabled: bool = False
    mode: str = "grid"
    n_trials: int = 8
    ranks: tuple[int, ...] = (64, 128)
    reg_params: tuple[float, ...] = (0.1, 0.3, 1.0)
    alphas: tuple[float, ...] = (1.0, 4.0)
    validation_ratio: float = 0.2
    seed: int = 7

    def __post_init__(self) -> None:
        one_of("als.tuning.mode", self.mode, ("grid", "random"))
        if not self.ranks or not self.reg_params or not self.alphas:
            raise ConfigError("als.tuning: ranks, reg_params and alphas need >= 1 value each")
        if not 0.0 < self.validation_ratio < 1.0:
            raise ConfigError("als.tuning.validation_ratio must be in (0, 1)")
        if self.n_trials <= 0:
            raise ConfigError("als.tuning.n_trials must be positive")
        if min(self.ranks) <= 0:
            raise ConfigError("als.tuning.ranks must be positive")
        if min(self.reg_params) < 0 or min(self.alphas) < 0:
            raise ConfigError("als.tuning.reg_params and als.tuning.alphas must be >= 0")


ALS_SOLVERS = ("mllib", "cg")  # recsys_spark.models.als.fit_als


@dataclass(frozen=True)
class AlsConfig:
    """Implicit ALS on the user-item affinity (see recsys_spark.models.als)."""

    rank: int = 64
    reg_param: float = 0.1
    alpha: float = 1.0
    max_iter: int = 15
    seed: int = 42
    num_user_blocks: int = 4
    num_item_blocks: int = 4
    log_scaling: bool = False
    log_eps: float = 1.0
    half_life_days: float | None = None
    window_days: float | None = None
    checkpoint_interval: int = 10
    solver: str = "cg"
    cg_steps: int = 3
    cg_blocks: int = 0
    broadcast_budget_mb: int = 1024
    tuning: AlsTuningConfig = field(default_factory=AlsTuningConfig)

    def __post_init__(self) -> None:
        if self.rank <= 0 or self.max_iter <= 0:
            raise ConfigError("als.rank and als.max_iter must be positive")
        if self.reg_param < 0 or self.alpha < 0:
            raise ConfigError("als.reg_param and als.alpha must be >= 0")
        if self.log_eps <= 0:
            raise ConfigError("als.log_eps must be positive")
        if self.num_user_blocks <= 0 or self.num_item_blocks <= 0:
            raise ConfigError("als.num_user_blocks and als.num_item_blocks must be positive")
        if self.checkpoint_interval == 0 or self.checkpoint_interval < -1:
            raise ConfigError("als.checkpoint_interval must be >= 1, or -1 for no checkpoints")
        positive_or_none("als.half_life_days", self.half_life_days)
        positive_or_none("als.window_days", self.window_days)
        if self.solver not in ALS_SOLVERS:
            raise ConfigError(f"als.solver must be one of {ALS_SOLVERS}; got {self.solver!r}")
        if self.cg_steps <= 0 or self.broadcast_budget_mb <= 0:
            raise ConfigError("als.cg_steps and als.broadcast_budget_mb must be positive")
        if self.cg_blocks < 0:
            raise ConfigError("als.cg_blocks must be >= 0 (0 = Spark's default parallelism)")


@dataclass(frozen=True)
class RecommendConfig:
    """Top-N serving: list length and the popularity fallback for cold or short histories."""

    top_n: int = 10
    min_interactions: int = 3
    popularity_window_days: float | None = 30.0

    def __post_init__(self) -> None:
        if self.top_n <= 0:
            raise ConfigError("recommend.top_n must be positive")
        if self.min_interactions < 0:
            raise ConfigError("recommend.min_interactions must be >= 0")
        positive_or_none("recommend.popularity_window_days", self.popularity_window_days)


SIMILARITY_MEASURES = ("count", "jaccard", "cosine", "lift", "inclusion", "llr")
SIMILARITY_NEIGHBOURHOODS = (
    "candidate",
    "history",
)  # recsys_spark.models.item_based.NEIGHBOURHOODS


@dataclass(frozen=True)
class SimilarityConfig:
    """Item-item co-occurrence similarities and item-based top-N (jobs/similarity.py)."""

    measures: tuple[str, ...] = ("jaccard", "cosine", "llr")
    min_support: int = 2
    max_per_user: int = 500
    max_per_item: int = 500
    top_k: int = 50
    neighbourhood: str = "candidate"
    seed: int = 42
    half_life_days: float | None = None
    window_days: float | None = None
    top_n: int = 10
    similar_items_n: int = 10
    num_partitions: int = 0

    def __post_init__(self) -> None:
        if not self.measures:
            raise ConfigError("similarity.measures: list at least one measure")
        for measure in self.measures:
            one_of("similarity.measures", measure, SIMILARITY_MEASURES)
        one_of("similarity.neighbourhood", self.neighbourhood, SIMILARITY_NEIGHBOURHOODS)
        for key in ("min_support", "max_per_user", "max_per_item", "top_k", "top_n"):
            if getattr(self, key) <= 0:
                raise ConfigError(f"similarity.{key} must be positive")
        if self.similar_items_n <= 0 or self.num_partitions < 0:
            raise ConfigError("similarity.similar_items_n must be > 0, num_partitions >= 0")
        positive_or_none("similarity.half_life_days", self.half_life_days)
        positive_or_none("similarity.window_days", self.window_days)


EASE_PRECISIONS = ("float32", "float64")


@dataclass(frozen=True)
class EaseConfig:
    """EASE, the closed-form linear item-item model (see recsys_spark.models.ease)."""

    enabled: bool = True
    l2: float = 500.0
    max_items: int = 20_000
    top_k: int = 500
    num_partitions: int = 0
    precision: str = "float32"

    def __post_init__(self) -> None:
        if self.l2 <= 0:
            raise ConfigError("ease.l2 must be positive")
        if self.precision not in EASE_PRECISIONS:
            raise ConfigError(
                f"ease.precision must be one of {', '.join(EASE_PRECISIONS)}; "
                f"got {self.precision!r}"
            )
        if self.max_items <= 0:
            raise ConfigError("ease.max_items must be positive")
        if self.top_k < 0 or self.num_partitions < 0:
            raise ConfigError("ease.top_k and ease.num_partitions must be >= 0")


RANKER_OBJECTIVES = ("rank_xendcg", "lambdarank")
# the feature groups of models/ranker.py (its FEATURE_GROUPS); `categories` last
RANKER_FEATURE_GROUPS = ("ranks", "scores", "sources", "items", "users", "categories")


@dataclass(frozen=True)
class RankerConfig:
    """The learned second-stage ranker over every model's candidates (models/ranker.py)."""

    enabled: bool = True
    depth: int = 50
    objective: str = "rank_xendcg"
    features: tuple[str, ...] = ("ranks",)
    windows: tuple[int, ...] = (7, 30)
    num_rounds: int = 300
    learning_rate: float = 0.03
    num_leaves: int = 7
    min_data_in_leaf: int = 100
    max_train_users: int = 20_000
    validation_ratio: float = 0.2
    seed: int = 42

    def __post_init__(self) -> None:
        for key in ("depth", "num_rounds", "num_leaves", "min_data_in_leaf"):
            if getattr(self, key) <= 0:
                raise ConfigError(f"ranker.{key} must be positive")
        one_of("ranker.objective", self.objective, RANKER_OBJECTIVES)
        if not self.features:
            raise ConfigError("ranker.features: list at least one feature group")
        for group in self.features:
            one_of("ranker.features", group, RANKER_FEATURE_GROUPS)
        if not self.windows or min(self.windows) <= 0:
            raise ConfigError("ranker.windows: list at least one positive number of days")
        if not 0.0 < self.learning_rate <= 1.0:
            raise ConfigError("ranker.learning_rate must be in (0, 1]")
        if not 0.0 < self.validation_ratio < 1.0:
            raise ConfigError("ranker.validation_ratio must be in (0, 1)")
        if self.max_train_users < 0:
            raise ConfigError("ranker.max_train_users must be >= 0")
