"""Curating a pack or a library of packs: which loops of an unlabelled folder do not fit? (`loop-svdd curate`)"""

from .library import LibraryResult, curate, curate_library, find_packs
from .pack import PackError
from .pipeline import CurationResult, curate_pack
from .scoring import cross_fit, robust_cross_fit

__all__ = [
    "CurationResult",
    "LibraryResult",
    "PackError",
    "curate_library",
    "find_packs",
    "cross_fit",
    "curate",
    "curate_pack",
    "robust_cross_fit",
]
