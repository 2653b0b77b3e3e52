"""LoopSVDD in transformers' per-model layout: configuration, feature extraction (FFM), modeling, the Deep SVDD
head's maths and the time scorer. These files import only each other, so a saved folder carries them as remote
code."""
