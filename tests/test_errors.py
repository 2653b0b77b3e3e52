"""Every exception class the package defines derives from `LoopSVDDError` (the CLI's one-line error), and keeps
its builtin base (`except ValueError` in callers still works)."""

from __future__ import annotations

import importlib
import inspect
import os
import pkgutil
from pathlib import Path

import pytest

import loop_svdd
from loop_svdd.errors import LoopSVDDError


def package_exceptions() -> dict[str, type[BaseException]]:
    """`module.Class` -> class, for every exception class defined (not imported) in a `loop_svdd` module."""
    found = {}
    for info in pkgutil.walk_packages(loop_svdd.__path__, "loop_svdd."):
        module = importlib.import_module(info.name)
        for name, obj in vars(module).items():
            if inspect.isclass(obj) and issubclass(obj, BaseException) and obj.__module__ == info.name:
                found[f"{info.name}.{name}"] = obj
    return found


def test_every_package_exception_is_a_loop_svdd_error():
    found = package_exceptions()
    assert len(found) >= 14, sorted(found)  # the walk reached the whole package
    assert [name for name, cls in found.items() if not issubclass(cls, LoopSVDDError)] == []


def test_package_exceptions_keep_their_builtin_base():
    from loop_svdd.audio.decode import AudioDecodeError
    from loop_svdd.demo.curate_view import UploadError
    from loop_svdd.export.graph import ExportError
    from loop_svdd.hub.publish import PublishError
    from loop_svdd.models.conversion import CheckpointError

    for cls in (AudioDecodeError, CheckpointError, UploadError, PublishError):
        assert issubclass(cls, ValueError), cls
    assert issubclass(ExportError, RuntimeError)


FULL_DISK_WRITES = """
import errno, sys
from pathlib import Path
import numpy as np, torch
out = Path(sys.argv[1])
def cache_chunk():
    from loop_svdd.engine.cache import _store_chunk
    _store_chunk(out, "fp", {"x": np.zeros(100_000, np.float32)}, {"hashes": ["h"], "errors": []})
def checkpoint():
    from loop_svdd.models.checkpointing import save_checkpoint
    save_checkpoint(out / "ckpt", {}, {"w": torch.zeros(100_000)}, step=1)
def model_folder():
    from conftest import small_model
    from loop_svdd import LoopSVDDFeatureExtractor
    from loop_svdd.models.model_io import save_detector
    save_detector(small_model(), LoopSVDDFeatureExtractor(), out / "model")
for write in (cache_chunk, checkpoint, model_folder):
    try:
        write()
    except OSError as err:
        print(write.__name__, err.errno == errno.ENOSPC)
    else:
        print(write.__name__, "wrote")
print("left:", sorted(p.name for p in out.rglob("*") if p.is_file()))
"""


def test_safetensors_writes_on_a_full_disk_raise_enospc_and_leave_nothing(tmp_path):
    """safetensors' writer raises its own error class; on a real full disk (a 64 KiB tmpfs) every write site of the
    package raises `OSError(ENOSPC)` instead, which every command turns into its one-line message, and leaves no
    half-written file behind."""
    import subprocess
    import sys

    from conftest import private_mounts_work

    if not private_mounts_work():
        pytest.skip("needs `unshare -rm` (Linux user and mount namespaces) to mount a small tmpfs")
    out, writes = tmp_path / "out", tmp_path / "writes.py"
    out.mkdir()
    writes.write_text(FULL_DISK_WRITES)
    script = f"mount -t tmpfs -o size=64k tmpfs '{out}' || exit 90\n'{sys.executable}' '{writes}' '{out}'"
    path = os.pathsep.join([str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")])
    proc = subprocess.run(
        ["unshare", "-rm", "sh", "-c", script], capture_output=True, text=True, timeout=300,
        env={**os.environ, "PYTHONPATH": path},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.splitlines() == ["cache_chunk True", "checkpoint True", "model_folder True", "left: []"]
