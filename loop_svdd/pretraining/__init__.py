"""Self-supervised pretraining of the HTS-AT encoder on loops (`loop-svdd pretrain-encoder`)."""

from .augment import ViewConfig, make_pair_batch, make_view
from .mels import corpus_mels
from .objective import ProjectionHead, nt_xent
from .trainer import PRETRAIN_SIZES, PretrainConfig, PretrainResult, initial_model, pretrain_encoder

__all__ = [
    "PRETRAIN_SIZES",
    "PretrainConfig",
    "PretrainResult",
    "ProjectionHead",
    "ViewConfig",
    "corpus_mels",
    "initial_model",
    "make_pair_batch",
    "make_view",
    "nt_xent",
    "pretrain_encoder",
]
