"""Restore the musicnn wheel's TensorFlow checkpoints with the wheel's own model code; write their variables to
safetensors and a parity fixture of TensorFlow's outputs. Runs OUTSIDE this package's environment:

    python3 -m venv /tmp/tfvenv
    /tmp/tfvenv/bin/pip install tensorflow-cpu==2.21.0 tf-keras==2.21.0 librosa soundfile safetensors
    /tmp/tfvenv/bin/pip download --no-deps musicnn==0.1.0 -d /tmp/mnn
    /tmp/tfvenv/bin/pip install --no-deps /tmp/mnn/musicnn-0.1.0-py3-none-any.whl
    TF_USE_LEGACY_KERAS=1 /tmp/tfvenv/bin/python scripts/musicnn_tf_dump.py /tmp/musicnn-tf \
        --fixture tests/fixtures/musicnn_tf_parity.safetensors
    .venv/bin/python -m loop_svdd.models.musicnn.conversion /tmp/musicnn-tf/MTT_musicnn.safetensors \
        loop_svdd/assets/musicnn_mtt --model MTT_musicnn     # likewise MSD_musicnn -> musicnn_msd

The fixture holds log-mel patches of three CC0 Sonic Pi loops (float32, librosa front end without the wheel's
float16 cast) and, for each model, TensorFlow's `max_pool`, `mean_pool`, `penultimate` and tag probabilities.
"""

import argparse
import os
from pathlib import Path

import librosa
import numpy as np
import tensorflow as tf
from musicnn import configuration as config
from musicnn import extractor, models
from safetensors.numpy import save_file

MODELS = ("MTT_musicnn", "MSD_musicnn")
LOOPS = ("loop_amen.flac", "loop_tabla.flac", "loop_garzul.flac")
SONIC_PI = Path("/usr/share/sonic-pi/samples")
N_FRAMES = 187


def fixture_patches() -> np.ndarray:
    """Two 3 s patches (the first and a half-overlapping one, or the loop repeated) of each loop."""
    out = []
    for name in LOOPS:
        audio, sr = librosa.load(SONIC_PI / name, sr=config.SR)
        audio = np.tile(audio, int(np.ceil(2 * N_FRAMES * config.FFT_HOP / len(audio))) + 1)
        mel = librosa.feature.melspectrogram(
            y=audio, sr=sr, hop_length=config.FFT_HOP, n_fft=config.FFT_SIZE, n_mels=config.N_MELS
        ).T
        mel = np.log10(10000 * mel.astype(np.float32) + 1)
        out += [mel[:N_FRAMES], mel[N_FRAMES // 2 : N_FRAMES // 2 + N_FRAMES]]
    return np.ascontiguousarray(np.stack(out), dtype=np.float32)  # safetensors writes the raw buffer


def checkpoint_dir(model: str) -> str:
    return os.path.dirname(models.__file__) + f"/{model}/"


def variables_of(model: str) -> dict[str, np.ndarray]:
    """The checkpoint's model variables by TensorFlow name (optimizer slots and counters left out)."""
    reader = tf.compat.v1.train.NewCheckpointReader(checkpoint_dir(model))
    names = [n for n in reader.get_variable_to_shape_map() if "Adam" not in n and "power" not in n]
    return {n: np.ascontiguousarray(reader.get_tensor(n)) for n in sorted(names)}


def outputs_of(model: str, patches: np.ndarray) -> dict[str, np.ndarray]:
    """The wheel's own `extractor()` run on `patches` (its spectrogram step replaced by the given patches)."""
    extractor.batch_data = lambda _file, _frames, _overlap: (patches, patches[0])
    taggram, _tags, features = extractor.extractor("patches", model=model, input_length=3)
    found = {"probabilities": taggram, **{k: features[k] for k in ("max_pool", "mean_pool")}}
    # The wheel's extractor returns the FIRST patch's penultimate (and cnn1-3) for every later patch (its loop
    # appends stale variables), so only the first patch's penultimate is TensorFlow's own.
    found["penultimate"] = features["penultimate"][:1]
    return {f"{model}.{k}": np.ascontiguousarray(v, np.float32) for k, v in found.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output_dir")
    parser.add_argument("--fixture", required=True)
    args = parser.parse_args()
    Path(args.output_dir).mkdir(parents=True, exist_ok=True)
    patches = fixture_patches()
    fixture = {"input_features": patches}
    for model in MODELS:
        variables, outputs = variables_of(model), outputs_of(model, patches)
        save_file(variables, str(Path(args.output_dir) / f"{model}.safetensors"))
        fixture.update(outputs)
        print(model, len(variables), "variables;", {k: v.shape for k, v in outputs.items()})
    save_file(fixture, args.fixture, metadata={"loops": ",".join(LOOPS), "source": "musicnn 0.1.0 wheel, TF 2.21"})


if __name__ == "__main__":
    main()
