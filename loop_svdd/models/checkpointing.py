"""Atomic training checkpoints (head training and encoder pretraining): tensors in safetensors, the rest in
JSON (never pickle).

`tensors-<step>.safetensors` is written first, then `trainer_state.json` naming it replaces the old one
(`os.replace`), so an interruption at any point leaves the previous consistent checkpoint.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from ..errors import safetensors_write_errors_as_oserror
from .model_io import default_file_mode

STATE_JSON = "trainer_state.json"


def flatten_optimizer(opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """An optimizer state as (tensors, JSON-able metadata)."""
    state = opt.state_dict()
    tensors, meta = {}, {"param_groups": state["param_groups"], "state": {}}
    for pid, pstate in state["state"].items():
        meta["state"][str(pid)] = {}
        for key, value in pstate.items():
            if torch.is_tensor(value):
                tensors[f"optim.{pid}.{key}"] = value.detach().clone().contiguous()
                meta["state"][str(pid)][key] = "tensor"
            else:
                meta["state"][str(pid)][key] = value
    return tensors, meta


def unflatten_optimizer(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> dict[str, Any]:
    state = {}
    for pid, pstate in meta["state"].items():
        state[int(pid)] = {k: (tensors[f"optim.{pid}.{k}"] if v == "tensor" else v) for k, v in pstate.items()}
    return {"state": state, "param_groups": meta["param_groups"]}


def load_checkpoint(directory: str | Path) -> tuple[dict[str, Any], dict[str, torch.Tensor]] | None:
    """The last checkpoint in `directory` as (JSON state, tensors), or None."""
    path = Path(directory) / STATE_JSON
    if not path.is_file():
        return None
    state = json.loads(path.read_text())
    return state, load_file(Path(directory) / state["tensors_file"])


def save_checkpoint(directory: str | Path, state: dict[str, Any], tensors: dict[str, torch.Tensor], step: int) -> None:
    """Write `tensors` then the JSON `state` naming them (replacing the previous checkpoint atomically)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    name = f"tensors-{step:07d}.safetensors"
    tmp = directory / f".{name}.tmp-{os.getpid()}"
    with safetensors_write_errors_as_oserror(tmp):  # a full disk: the previous checkpoint stays whole
        save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, str(tmp))
    os.chmod(tmp, default_file_mode())  # safetensors writes 0o600
    os.replace(tmp, directory / name)
    tmp_json = directory / f".{STATE_JSON}.tmp-{os.getpid()}"
    with open(tmp_json, "w") as f:
        json.dump({**state, "tensors_file": name}, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp_json, directory / STATE_JSON)
    for other in directory.iterdir():
        if other.name.startswith("tensors-") and other.name != name:
            other.unlink()


def rng_tensors(
    device: torch.device, generator: torch.Generator | None = None, rank: int = 0
) -> dict[str, torch.Tensor]:
    """The RNG state a resumed run needs: torch's CPU generator, `generator`, and this rank's CUDA generator."""
    tensors = {"rng.torch": torch.get_rng_state()}
    if generator is not None:
        tensors["rng.generator"] = generator.get_state()
    if device.type == "cuda":
        tensors[f"rng.cuda.{rank}"] = torch.cuda.get_rng_state(device)
    return tensors


def restore_rng(
    tensors: dict[str, torch.Tensor], device: torch.device, generator: torch.Generator | None = None, rank: int = 0
) -> None:
    """Undo :func:`rng_tensors`."""
    torch.set_rng_state(tensors["rng.torch"])
    if generator is not None:
        generator.set_state(tensors["rng.generator"])
    if device.type == "cuda" and f"rng.cuda.{rank}" in tensors:
        torch.cuda.set_rng_state(tensors[f"rng.cuda.{rank}"], device)


def save_training_state(
    directory: str | Path,
    state: dict[str, Any],
    tensors: dict[str, torch.Tensor],
    optimizer: torch.optim.Optimizer | None,
    device: torch.device,
    generator: torch.Generator | None = None,
    rank: int = 0,
    step: int = 0,
) -> None:
    """A trainer's checkpoint: `tensors` (weights), the optimizer (None: a phase that restarts it) and the RNG."""
    tensors, opt_meta = dict(tensors), None
    if optimizer is not None:
        opt_tensors, opt_meta = flatten_optimizer(getattr(optimizer, "optimizer", optimizer))  # accelerate wraps it
        tensors.update(opt_tensors)
    tensors.update(rng_tensors(device, generator, rank))
    save_checkpoint(directory, {**state, "optimizer": opt_meta}, tensors, step=step)


def load_training_state(
    directory: str | Path | None,
    expected: dict[str, Any],
    device: torch.device,
    generator: torch.Generator | None = None,
    rank: int = 0,
) -> tuple[dict[str, Any], dict[str, torch.Tensor], dict[str, Any] | None] | None:
    """Undo :func:`save_training_state`: (JSON state, tensors, optimizer state or None), with the RNG restored;
    None without a checkpoint. Refuses one whose `expected` entries (config, data fingerprint, format) differ."""
    resumed = load_checkpoint(directory) if directory else None
    if resumed is None:
        return None
    saved, tensors = resumed
    if any(saved.get(key) != value for key, value in expected.items()):
        raise ValueError(
            f"the checkpoint in {directory} was written for another config, data set or version; "
            "use a fresh output or checkpoint directory (or delete it)"
        )
    restore_rng(tensors, device, generator, rank)
    optimizer = unflatten_optimizer(tensors, saved["optimizer"]) if saved.get("optimizer") is not None else None
    return saved, tensors, optimizer
