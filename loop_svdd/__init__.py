"""loop-svdd: learn what "normal" sounds like in a collection of musical loops and score new loops against it."""

__version__ = "0.1.0"
