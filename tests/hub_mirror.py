"""A local Hugging Face Hub mirror for tests: folders become git repos served by olah on 127.0.0.1.

olah (an offline-capable Hub mirror) serves git repos under ``mirrors-path/models/ORG/NAME`` with the Hub's
``/api/models/...`` and ``/ORG/NAME/resolve/REV/FILE`` endpoints. Two answers differ from the real Hub when
olah runs offline, and a small middleware fixes them: ``/api/models/ORG/NAME`` (no revision) is answered as
``.../revision/main``, and a file missing from a repo that exists is a 404 ``EntryNotFound`` (olah says 401
``RepoNotFound`` for HEAD and fails with a KeyError for GET, which makes transformers give up on optional
files such as ``processor_config.json``).

Run as a script (``python hub_mirror.py CONFIG.toml PORT``) it serves; import it for `LocalHubMirror`.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_git_repo(src: Path, dest: Path) -> None:
    shutil.copytree(src, dest)
    git = [
        "git",
        "-c",
        "user.name=loop-svdd-tests",
        "-c",
        "user.email=tests@localhost",
        "-c",
        "init.defaultBranch=main",
    ]
    subprocess.run([*git, "init", "-q"], cwd=dest, check=True, timeout=30)
    subprocess.run([*git, "add", "-A"], cwd=dest, check=True, timeout=30)
    subprocess.run([*git, "commit", "-q", "-m", "upload"], cwd=dest, check=True, timeout=30)


class LocalHubMirror:
    """Context manager: serve `{repo_id: folder}` as Hub model repos; `endpoint` is the HF_ENDPOINT to use."""

    def __init__(self, root: Path, repos: dict[str, Path], start_timeout_s: float = 45.0) -> None:
        self.root = Path(root)
        self.repos = repos
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.start_timeout_s = start_timeout_s
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> LocalHubMirror:
        mirrors = self.root / "mirrors"
        for repo_id, folder in self.repos.items():
            make_git_repo(Path(folder), mirrors / "models" / repo_id)
        config = self.root / "olah.toml"
        config.write_text(
            "[basic]\n"
            f'host = "127.0.0.1"\nport = {self.port}\n'
            f'repos-path = "{self.root / "cache"}"\nmirrors-path = ["{mirrors}"]\n'
            "[accessibility]\noffline = true\n"
        )
        self.log = open(self.root / "olah.log", "w")  # noqa: SIM115 - closed in __exit__
        self.process = subprocess.Popen(
            [sys.executable, __file__, str(config), str(self.port)],
            cwd=self.root,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        probe = f"{self.endpoint}/api/models/{next(iter(self.repos))}/revision/main"
        deadline = time.monotonic() + self.start_timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"olah exited early: {(self.root / 'olah.log').read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(probe, timeout=2) as response:
                    if response.status == 200:
                        return self
            except OSError:
                time.sleep(0.2)
        self.__exit__(None, None, None)
        raise TimeoutError(f"olah did not answer {probe} within {self.start_timeout_s} s")

    def __exit__(self, *exc: object) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.log.close()


def serve(config: str, port: int) -> None:
    os.environ["OLAH_CONFIG"] = config
    os.environ.setdefault("OLAH_LOG_PATH", str(Path(config).parent / "logs"))
    import uvicorn
    from fastapi import Request
    from fastapi.responses import Response
    from olah.server import app

    api_without_revision = re.compile(r"^/api/models/[^/]+/[^/]+/?$")

    @app.middleware("http")
    async def hub_semantics(request: Request, call_next):
        path = request.scope["path"]
        if api_without_revision.match(path):
            request.scope["path"] = path.rstrip("/") + "/revision/main"
        missing = Response(
            status_code=404, headers={"x-error-code": "EntryNotFound", "x-error-message": "Entry not found"}
        )
        try:
            response = await call_next(request)
        except KeyError:  # olah's GET of a file missing from a local repo raises
            return missing
        if response.status_code == 401 and "/resolve/" in path:
            return missing
        return response

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


if __name__ == "__main__":
    serve(sys.argv[1], int(sys.argv[2]))
