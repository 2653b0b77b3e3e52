"""Configuration of [`MusicnnModel`]: the musicnn music-tagging CNN of Pons and Serra (ISMIR 2019 LBD)."""

from __future__ import annotations

from typing import Any

from transformers import PretrainedConfig

# The tag vocabularies of the two checkpoints shipped in the musicnn wheel (musicnn/configuration.py).
MTT_LABELS = [
    "guitar", "classical", "slow", "techno", "strings", "drums", "electronic", "rock", "fast", "piano", "ambient",
    "beat", "violin", "vocal", "synth", "female", "indian", "opera", "male", "singing", "vocals", "no vocals",
    "harpsichord", "loud", "quiet", "flute", "woman", "male vocal", "no vocal", "pop", "soft", "sitar", "solo",
    "man", "classic", "choir", "voice", "new age", "dance", "male voice", "female vocal", "beats", "harp", "cello",
    "no voice", "weird", "country", "metal", "female voice", "choral",
]  # fmt: skip
MSD_LABELS = [
    "rock", "pop", "alternative", "indie", "electronic", "female vocalists", "dance", "00s", "alternative rock",
    "jazz", "beautiful", "metal", "chillout", "male vocalists", "classic rock", "soul", "indie rock", "Mellow",
    "electronica", "80s", "folk", "90s", "chill", "instrumental", "punk", "oldies", "blues", "hard rock",
    "ambient", "acoustic", "experimental", "female vocalist", "guitar", "Hip-Hop", "70s", "party", "country",
    "easy listening", "sexy", "catchy", "funk", "electro", "heavy metal", "Progressive rock", "60s", "rnb",
    "indie pop", "sad", "House", "happy",
]  # fmt: skip


class MusicnnConfig(PretrainedConfig):
    r"""Configuration of [`MusicnnModel`].

    Args:
        n_mels (`int`, defaults to 96): mel bands of the input patches.
        patch_frames (`int`, defaults to 187): frames per input patch (3 s at 16 kHz, hop 256).
        frontend_filters (`float`, defaults to 1.6): width factor of the musically motivated front end
            (timbral blocks get `int(128 * f)` filters, temporal blocks `int(32 * f)`).
        midend_filters (`int`, defaults to 64): channels of the three dense mid-end convolutions.
        backend_units (`int`, defaults to 200): units of the penultimate dense layer.
        labels (`list[str]`): the tag vocabulary (50 tags for the MTT and MSD checkpoints).
        sampling_rate, n_fft, hop_length: the front end (16 kHz, 512, 256).
        batch_norm_eps (`float`, defaults to 1e-3): TensorFlow's batch-normalisation epsilon.
    """

    model_type = "musicnn"

    def __init__(
        self,
        n_mels: int = 96,
        patch_frames: int = 187,
        frontend_filters: float = 1.6,
        midend_filters: int = 64,
        backend_units: int = 200,
        labels: list[str] | None = None,
        sampling_rate: int = 16000,
        n_fft: int = 512,
        hop_length: int = 256,
        batch_norm_eps: float = 1e-3,
        **kwargs: Any,
    ) -> None:
        self.n_mels = n_mels
        self.patch_frames = patch_frames
        self.frontend_filters = frontend_filters
        self.midend_filters = midend_filters
        self.backend_units = backend_units
        self.labels = list(labels) if labels is not None else list(MTT_LABELS)
        self.sampling_rate = sampling_rate
        self.n_fft = n_fft
        self.hop_length = hop_length
        self.batch_norm_eps = batch_norm_eps
        super().__init__(**kwargs)

    @property
    def timbral_filters(self) -> int:
        return int(self.frontend_filters * 128)

    @property
    def temporal_filters(self) -> int:
        return int(self.frontend_filters * 32)

    @property
    def frontend_dim(self) -> int:
        return 2 * self.timbral_filters + 3 * self.temporal_filters

    @property
    def feature_dim(self) -> int:
        """Width of `max_pool` / `mean_pool`: front end plus the three mid-end layers (753 for the shipped
        checkpoints)."""
        return self.frontend_dim + 3 * self.midend_filters
