"""rubric_score: the mean HealthBench item score (already graded by medeval.graders.rubric, in [0, 1])."""
from __future__ import annotations

import numpy as np

from .base import metric


def _item(pred, gold, **_):
    """The item's graded score; an item without one (nothing graded) counts 0."""
    return float(pred) if isinstance(pred, (int, float)) else 0.0


@metric("rubric_score", item=_item, answer_types=("rubric",))
def rubric_score(preds, golds, **_):
    """Mean rubric score: points met over positive points, clipped to [0, 1], per item"""
    return float(np.mean([_item(p, g) for p, g in zip(preds, golds)])) if preds else 0.0
