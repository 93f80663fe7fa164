"""Dotted field lookup in a dataset row (`context.reasoning_required_pred`), shared by every layer."""
from __future__ import annotations


def get_field(row: dict, path: str):
    """Dotted lookup: get_field(row, 'context.reasoning_required_pred'); KeyError(path) if absent."""
    cur = row
    for part in path.split("."):
        if isinstance(cur, dict) and part in cur:
            cur = cur[part]
        else:
            raise KeyError(path)
    return cur
