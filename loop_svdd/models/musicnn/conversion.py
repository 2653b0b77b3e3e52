"""Convert the musicnn wheel's TensorFlow checkpoints to a `MusicnnModel` folder (safetensors + config.json).

Two steps, so that TensorFlow never enters this package's dependencies:
1. `scripts/musicnn_tf_dump.py`, run in a separate venv with TensorFlow and the musicnn wheel, restores a
   checkpoint with the wheel's own model code and writes its variables, under their TensorFlow names, to a
   safetensors file (and the parity fixture of TensorFlow outputs);
2. `python -m loop_svdd.models.musicnn.conversion VARIABLES.safetensors OUTPUT_DIR --model MTT_musicnn` maps them onto
   [`MusicnnModel`] (this module) and saves the folder.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

import torch
from safetensors.torch import load_file

from .configuration_musicnn import MSD_LABELS, MTT_LABELS, MusicnnConfig
from .modeling_musicnn import MusicnnModel

# TensorFlow layer name -> MusicnnModel module, in the order build_musicnn creates them.
CONV_NAMES = {f"conv2d{'' if i == 0 else f'_{i}'}": m for i, m in enumerate(
    ["frontend.0.conv", "frontend.1.conv", "frontend.2.conv", "frontend.3.conv", "frontend.4.conv",
     "midend.0.conv", "midend.1.conv", "midend.2.conv"])}  # fmt: skip
BN_NAMES = {f"batch_normalization{'' if i == 0 else f'_{i}'}": m for i, m in enumerate(
    ["input_bn", "frontend.0.bn", "frontend.1.bn", "frontend.2.bn", "frontend.3.bn", "frontend.4.bn",
     "midend.0.bn", "midend.1.bn", "midend.2.bn", "pool_bn", "dense_bn"])}  # fmt: skip
DENSE_NAMES = {"dense": "dense", "dense_1": "classifier"}
BN_FIELDS = {"gamma": "weight", "beta": "bias", "moving_mean": "running_mean", "moving_variance": "running_var"}
LABELS = {"MTT_musicnn": MTT_LABELS, "MSD_musicnn": MSD_LABELS}


def _conv_weight(kernel: torch.Tensor, module: str) -> torch.Tensor:
    """TF `(kh, kw, in, out)` -> torch Conv2d `(out, in, kh, kw)`, or Conv1d `(out, kw, kh)` for the mid end
    (whose TF kernels span the whole feature axis with one input channel)."""
    if module.startswith("midend"):
        return kernel[:, :, 0, :].permute(2, 1, 0)
    return kernel.permute(3, 2, 0, 1)


def state_dict_from_tf(variables: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The `MusicnnModel` state dict from TensorFlow variables named as in the checkpoint (optimizer slots and
    counters ignored)."""
    state: dict[str, torch.Tensor] = {}
    for tf_name, module in CONV_NAMES.items():
        state[f"{module}.weight"] = _conv_weight(variables[f"{tf_name}/kernel"], module)
        state[f"{module}.bias"] = variables[f"{tf_name}/bias"]
    for tf_name, module in BN_NAMES.items():
        for tf_field, field in BN_FIELDS.items():
            state[f"{module}.{field}"] = variables[f"{tf_name}/{tf_field}"]
    for tf_name, module in DENSE_NAMES.items():
        state[f"{module}.weight"] = variables[f"{tf_name}/kernel"].T
        state[f"{module}.bias"] = variables[f"{tf_name}/bias"]
    return {k: v.contiguous().float() for k, v in state.items()}


def convert(variables_file: str | Path, output_dir: str | Path, model: str) -> MusicnnModel:
    """Build, load and save a `MusicnnModel` from a variables dump of the `model` checkpoint."""
    if model not in LABELS:
        raise ValueError(f"model must be one of {sorted(LABELS)}, got {model!r}")
    net = MusicnnModel(MusicnnConfig(labels=LABELS[model], name_or_path=f"musicnn {model}"))
    state = state_dict_from_tf(load_file(str(variables_file)))
    missing, unexpected = net.load_state_dict(state, strict=False)
    if unexpected or [k for k in missing if not k.endswith("num_batches_tracked")]:
        raise ValueError(f"conversion mismatch: missing {missing}, unexpected {unexpected}")
    net.eval().save_pretrained(output_dir)
    return net


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("variables", help="safetensors dump of the TensorFlow variables")
    parser.add_argument("output_dir")
    parser.add_argument("--model", default="MTT_musicnn", choices=sorted(LABELS))
    args = parser.parse_args(argv)
    convert(args.variables, args.output_dir, args.model)
    print(f"{args.model} -> {args.output_dir}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
