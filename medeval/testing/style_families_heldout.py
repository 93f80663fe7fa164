"""HELD-OUT answer-style families (see style_families.py): not to be read while tuning rules."""
from .style_families import _F

HELD_OUT = {}
