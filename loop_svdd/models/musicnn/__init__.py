"""musicnn (Pons and Serra, 2019) in PyTorch: the teacher the embedded HTS-AT encoder is distilled from, and a
reference encoder in its own right (`loop-svdd embed --encoder musicnn-mtt`)."""

from .configuration_musicnn import MusicnnConfig
from .feature_extraction_musicnn import MusicnnFeatureExtractor
from .modeling_musicnn import MusicnnModel, MusicnnOutput

__all__ = ["MusicnnConfig", "MusicnnFeatureExtractor", "MusicnnModel", "MusicnnOutput"]
