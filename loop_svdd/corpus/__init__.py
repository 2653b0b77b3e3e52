"""The real-instrument loop corpus: FluidSynth-rendered GM parts (FluidR3_GM, TimGM6mb), Hydrogen drum-kit
grooves and Sonic Pi recordings, written as a ``datasets`` audiofolder (FLAC + ``metadata.csv`` + card).
"""

from .build import COLUMNS, build_corpus
from .sources import CorpusError

__all__ = ["COLUMNS", "CorpusError", "build_corpus"]
