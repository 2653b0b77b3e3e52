"""Every exception class the package defines derives from `LoopSVDDError` (the CLI's one-line error), and keeps
its builtin base (`except ValueError` in callers still works)."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

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
