"""Item-item co-occurrence similarities (count, Jaccard, cosine, lift, inclusion, LLR).

Modules: `caps` (seeded downsampling), `blocks` (executor kernels: rows of XᵀX per item
block), `cooccurrence` (the Spark plan, `item_similarity`), `measures` (scores from
counts), `top_k` (top-K per group in numpy), `item_models` (the runner, `run_similarity`).
"""

from recsys_spark.similarity.caps import cap_interactions
from recsys_spark.similarity.cooccurrence import item_similarity
from recsys_spark.similarity.measures import MEASURES, log_likelihood_ratio, similarity_scores
from recsys_spark.similarity.top_k import top_k_per_group

__all__ = [
    "MEASURES",
    "cap_interactions",
    "item_similarity",
    "log_likelihood_ratio",
    "similarity_scores",
    "top_k_per_group",
]
