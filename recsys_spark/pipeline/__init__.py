"""The nightly pipeline: one run date's stages, gate, publishing, lineage and lock.

`run_night` (pipeline.night) runs the stages of `Night` (pipeline.stages) in order;
`jobs/nightly.py` is its entry point. The building blocks (holdout, champion, gate,
publish, lock, schedule) are usable and tested on their own.
"""
