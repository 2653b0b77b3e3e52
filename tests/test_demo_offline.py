"""`loop-svdd demo` runs offline by default: Gradio's analytics are off before gradio is imported, unless the user
chose otherwise."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("gradio", reason="the demo needs gradio: pip install 'loop-svdd[demo]'")

REPO = Path(__file__).resolve().parents[1]
# Runs `loop-svdd demo` in a fresh interpreter; a meta-path spy records the variable when gradio is first imported.
SCRIPT = """
import importlib.abc, json, os, sys

seen = {}

class Spy(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name == "gradio" and "at_import" not in seen:
            seen["at_import"] = os.environ.get("GRADIO_ANALYTICS_ENABLED")

sys.meta_path.insert(0, Spy())
from loop_svdd.cli import main

code = main(["demo", sys.argv[1], "--port", "7861"])  # not a model: stops after gradio is imported
from gradio.analytics import analytics_enabled

print(json.dumps({"code": code, **seen, "enabled": analytics_enabled()}))
"""


def run_demo(tmp_path: Path, analytics: str | None) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "GRADIO_ANALYTICS_ENABLED"}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    env["HF_HUB_OFFLINE"] = "1"
    if analytics is not None:
        env["GRADIO_ANALYTICS_ENABLED"] = analytics
    (tmp_path / "not-a-model").mkdir(exist_ok=True)
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path / "not-a-model")],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_demo_turns_gradio_analytics_off_before_importing_it(tmp_path):
    seen = run_demo(tmp_path, None)
    assert seen == {"code": 2, "at_import": "False", "enabled": False}


@pytest.mark.slow
def test_demo_keeps_the_users_analytics_choice(tmp_path):
    seen = run_demo(tmp_path, "True")
    assert seen == {"code": 2, "at_import": "True", "enabled": True}
