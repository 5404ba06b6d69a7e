"""Item-item co-occurrence similarities (count, Jaccard, cosine, lift, inclusion, LLR)."""

from recsys_spark.similarity.cooccurrence import cap_interactions, item_similarity
from recsys_spark.similarity.measures import MEASURES, log_likelihood_ratio, similarity_scores

__all__ = [
    "MEASURES",
    "cap_interactions",
    "item_similarity",
    "log_likelihood_ratio",
    "similarity_scores",
]
