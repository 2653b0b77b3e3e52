"""Audio in: the one decoder (files -> mono float32 at the model's rate), corpora as `datasets`, and the
decoding path every entry point shares (bad files skipped and named)."""

from .decode import AudioDecodeError, audio_duration, find_audio_files, load_audio

__all__ = ["AudioDecodeError", "audio_duration", "find_audio_files", "load_audio"]
