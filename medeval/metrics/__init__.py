"""Metrics: plain functions from (predictions, references) to a number.

Each metric is registered by name so that task YAML files, `medeval score` and
the regression gate can all look it up. A metric registered with `item=` has a
per-item score whose mean is the corpus value (accuracy, ROUGE, exact match);
the others (F1 variants) are recomputed on each bootstrap resample. The
statistics over metrics (bootstrap intervals, paired tests) are in medeval/stats.py.

Predictions that could not be extracted are `None`; every metric counts them
as wrong rather than dropping them.
"""
from __future__ import annotations

from . import classification, diagnosis, ner, permutation, rubric, text  # noqa: F401  (importing a metric module registers it
from .base import REGISTRY, Metric, compute, get, item_scores, metric, names  # noqa: F401  (the registry's API)
