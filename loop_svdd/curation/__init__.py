"""Curating a pack: which loops of an unlabelled folder do not fit? (`loop-svdd curate`)"""

from .pack import PackError
from .pipeline import CurationResult, curate
from .scoring import cross_fit, robust_cross_fit

__all__ = ["CurationResult", "PackError", "cross_fit", "curate", "robust_cross_fit"]
