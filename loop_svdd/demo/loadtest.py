"""A load test for the running demo: many concurrent clients send score requests through Gradio's queue API
(upload, ``queue/join``, the ``queue/data`` event stream) and every request is classified as answered (a score),
refused cleanly (the demo's or Gradio's own message: a limit, an undecodable file, the queue is full), an
error (anything else) or lost (no answer before its timeout). The server's RSS is sampled meanwhile.

Plain httpx rather than gradio_client: every request gets a hard deadline, and uploads over the size limit
reach the server (gradio_client refuses them itself, before sending).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np

ANSWERED, REFUSED, ERROR, LOST = "answered", "refused", "error", "lost"

# A refusal is clean when its message is one of these (reason, phrase); anything else is an error.
REFUSAL_REASONS: tuple[tuple[str, str], ...] = (
    ("queue_full", "Queue is full"),
    ("too_large", "maximum allowed size"),
    ("too_large", "MB limit"),
    ("too_long", "s limit; trim it first"),
    ("undecodable", "cannot decode audio"),
    ("no_input", "Add at least one loop"),
)


@dataclass
class RequestRecord:
    """One request: which client sent which file, what came back and how long it took."""

    client: int
    index: int
    file: str
    expected: str
    outcome: str
    reason: str
    latency_s: float
    message: str = ""


def refusal_reason(message: str) -> str | None:
    """The reason of a clean refusal, or None when `message` is not one the demo or Gradio gives."""
    if "Traceback" in message:
        return None
    for reason, phrase in REFUSAL_REASONS:
        if phrase in message:
            return reason
    return None


class _Demo:
    """Where the demo's score endpoint lives (read once from its /config)."""

    def __init__(self, url: str, timeout_s: float, api_name: str = "score") -> None:
        self.url = url.rstrip("/") + "/"
        config = httpx.get(self.url + "config", timeout=timeout_s).raise_for_status().json()
        self.api = self.url + config.get("api_prefix", "/gradio_api").strip("/") + "/"
        deps = [d for d in config["dependencies"] if d.get("api_name") == api_name]
        if not deps:
            raise ValueError(f"{url}: no /{api_name} endpoint")
        self.fn_index = deps[0].get("id", config["dependencies"].index(deps[0]))
        targets = deps[0].get("targets") or [[None]]
        self.trigger_id = targets[0][0]

    def score(self, http: httpx.Client, path: Path, session_hash: str, deadline: float) -> tuple[str, str, str]:
        """Upload `path` and score it: (outcome, reason, message)."""

        def left() -> float:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise httpx.TimeoutException("deadline passed")
            return remaining

        with open(path, "rb") as f:
            r = http.post(self.api + "upload", files=[("files", (path.name, f))], timeout=left())
        if r.status_code != 200:
            return _refused_or_error(f"upload: HTTP {r.status_code}: {_detail(r)}")
        file_data = {"path": r.json()[0], "orig_name": path.name, "meta": {"_type": "gradio.FileData"}}
        body = {
            "data": [[file_data], None],
            "fn_index": self.fn_index,
            "session_hash": session_hash,
            "event_data": None,
            "trigger_id": self.trigger_id,
        }
        r = http.post(self.api + "queue/join", json=body, timeout=left())
        if r.status_code != 200:
            return _refused_or_error(f"join: HTTP {r.status_code}: {_detail(r)}")
        event_id = r.json()["event_id"]
        with http.stream("GET", self.api + "queue/data", params={"session_hash": session_hash}, timeout=left()) as s:
            for line in s.iter_lines():
                left()
                if not line.startswith("data:"):
                    continue
                msg = json.loads(line[5:])
                if msg.get("msg") == "server_stopped" or msg.get("message") == "server_stopped":
                    return ERROR, "server_stopped", "the server stopped"
                if msg.get("event_id") != event_id or msg.get("msg") != "process_completed":
                    continue
                output = msg.get("output") or {}
                if msg.get("success", True) and output.get("data"):
                    status = str(output["data"][0])
                    ok = status.startswith("Scored")
                    return (ANSWERED, "scored", "") if ok else (ERROR, "unexpected_output", status[:200])
                return _refused_or_error(str(output.get("error")))
        return LOST, "stream_closed", "the event stream closed without a result"


def _detail(r: httpx.Response) -> str:
    try:
        return str(r.json().get("detail", r.text))
    except ValueError:
        return r.text[:200]


def _refused_or_error(message: str) -> tuple[str, str, str]:
    reason = refusal_reason(message)
    return (REFUSED, reason, message[:300]) if reason else (ERROR, "other", message[:300])


class RssSampler(threading.Thread):
    """Samples the RSS of a process and its children (MB) every `interval_s` until stopped."""

    def __init__(self, pid: int, interval_s: float = 0.2) -> None:
        super().__init__(daemon=True)
        import psutil

        self.process = psutil.Process(pid)
        self.interval_s = interval_s
        self.samples: list[float] = []
        self._stop_event = threading.Event()

    def rss_mb(self) -> float:
        import psutil

        try:
            procs = [self.process, *self.process.children(recursive=True)]
            total = 0
            for p in procs:
                try:
                    total += p.memory_info().rss
                except psutil.Error:
                    pass
            return total / 2**20
        except psutil.Error:
            return float("nan")

    def run(self) -> None:
        while not self._stop_event.is_set():
            self.samples.append(self.rss_mb())
            self._stop_event.wait(self.interval_s)

    def stop(self) -> list[float]:
        self._stop_event.set()
        self.join(timeout=5)
        self.samples.append(self.rss_mb())
        return self.samples


def _normalise(files: Sequence[str | Path | tuple[str | Path, str]]) -> list[tuple[Path, str]]:
    out = []
    for item in files:
        path, expected = item if isinstance(item, tuple) else (item, "any")
        if expected not in ("any", ANSWERED, REFUSED):
            raise ValueError(f"expected outcome must be 'any', 'answered' or 'refused', got {expected!r}")
        out.append((Path(path), expected))
    if not out:
        raise ValueError("no files to send")
    return out


def _warm_up(demo: _Demo, items: list[tuple[Path, str]], timeout_s: float) -> str:
    """The outcome of one request with a file expected to be answered (the first file when none is)."""
    valid = [p for p, e in items if e == ANSWERED] or [items[0][0]]
    with httpx.Client() as http:
        try:
            return demo.score(http, valid[0], uuid.uuid4().hex, time.monotonic() + timeout_s)[0]
        except httpx.HTTPError as err:
            return f"{ERROR}: {type(err).__name__}"


def _request(
    demo: _Demo, http: httpx.Client, session_hash: str, c: int, i: int, item: tuple[Path, str], timeout_s: float
) -> RequestRecord:
    """Client `c`'s request `i` (file `item`), timed; every failure becomes an outcome, never an exception."""
    path, expected = item
    start = time.monotonic()
    try:
        outcome, reason, message = demo.score(http, path, session_hash, start + timeout_s)
    except httpx.TimeoutException:
        outcome, reason, message = LOST, "timeout", f"no answer within {timeout_s:g} s"
    except Exception as err:  # every failure is a figure, not a crash
        outcome, reason, message = ERROR, type(err).__name__, str(err)[:300]
    return RequestRecord(c, i, path.name, expected, outcome, reason, time.monotonic() - start, message)


def _run_clients(
    demo: _Demo,
    items: list[tuple[Path, str]],
    clients: int,
    requests_per_client: int,
    timeout_s: float,
    sampler: RssSampler | None,
) -> tuple[list[RequestRecord], float, list[float]]:
    """Start the `clients` threads together and wait for them (bounded), then stop `sampler`; (their records, wall
    time in s, the RSS samples)."""
    records: list[RequestRecord] = []
    lock = threading.Lock()
    barrier = threading.Barrier(clients)

    def client_loop(c: int) -> None:
        session_hash = uuid.uuid4().hex
        with httpx.Client() as http:
            try:
                barrier.wait(timeout=timeout_s)
            except threading.BrokenBarrierError:
                pass
            for i in range(requests_per_client):
                record = _request(demo, http, session_hash, c, i, items[(c + i) % len(items)], timeout_s)
                with lock:
                    records.append(record)

    started = time.monotonic()
    threads = [threading.Thread(target=client_loop, args=(c,), daemon=True) for c in range(clients)]
    for t in threads:
        t.start()
    hard_deadline = started + requests_per_client * timeout_s + 10.0
    for t in threads:
        t.join(timeout=max(0.0, hard_deadline - time.monotonic()))
    wall_s = time.monotonic() - started
    rss = sampler.stop() if sampler else []
    with lock:
        return list(records), wall_s, rss


def run_load_test(
    url: str,
    files: Sequence[str | Path | tuple[str | Path, str]],
    clients: int = 8,
    requests_per_client: int = 3,
    timeout_s: float = 60.0,
    server_pid: int | None = None,
    warmup: bool = True,
) -> dict[str, Any]:
    """`clients` threads, started together, each send `requests_per_client` score requests one after another
    (client c's request i sends file (c + i) mod len(files)); each request must finish within `timeout_s` or
    counts as lost. `files` are paths or `(path, expected)` with expected 'answered' or 'refused'; a request
    whose outcome contradicts it (a queue-full refusal never does) is counted in `unexpected`. With
    `server_pid`, the server's RSS is sampled throughout (after one warm-up request when `warmup`)."""
    items = _normalise(files)
    demo = _Demo(url, timeout_s)
    warmup_outcome = _warm_up(demo, items, timeout_s) if warmup else None
    sampler = RssSampler(server_pid) if server_pid else None
    if sampler:
        sampler.start()
    done, wall_s, rss = _run_clients(demo, items, clients, requests_per_client, timeout_s, sampler)
    seen = {(r.client, r.index) for r in done}
    for c in range(clients):  # a request with no record at the hard deadline: lost
        for i in range(requests_per_client):
            if (c, i) not in seen:
                path, expected = items[(c + i) % len(items)]
                done.append(RequestRecord(c, i, path.name, expected, LOST, "hung", wall_s, "no record"))
    return summarise(done, clients, wall_s, rss, warmup_outcome)


def _unexpected(r: RequestRecord) -> bool:
    if r.outcome not in (ANSWERED, REFUSED) or r.reason == "queue_full" or r.expected == "any":
        return False
    return r.outcome != r.expected


def summarise(
    records: list[RequestRecord],
    clients: int,
    wall_s: float,
    rss_mb: list[float],
    warmup_outcome: str | None = None,
) -> dict[str, Any]:
    """The figures of a run (see `run_load_test`)."""
    counts = Counter(r.outcome for r in records)
    finished = np.array([r.latency_s for r in records if r.outcome in (ANSWERED, REFUSED)])
    answered = np.array([r.latency_s for r in records if r.outcome == ANSWERED])

    def pct(values: np.ndarray, q: float) -> float | None:
        return round(float(np.percentile(values, q)), 3) if values.size else None

    rss = [x for x in rss_mb if x == x]  # drop NaN (process gone)
    return {
        "requests": len(records),
        "concurrency": clients,
        "answered": counts[ANSWERED],
        "refused": counts[REFUSED],
        "errors": counts[ERROR],
        "lost": counts[LOST],
        "unexpected": sum(_unexpected(r) for r in records),
        "reasons": dict(sorted(Counter(f"{r.outcome}:{r.reason}" for r in records).items())),
        "latency_p50_s": pct(finished, 50),
        "latency_p95_s": pct(finished, 95),
        "latency_max_s": round(float(finished.max()), 3) if finished.size else None,
        "answered_p95_s": pct(answered, 95),
        "wall_s": round(wall_s, 2),
        "throughput_rps": round(len(records) / wall_s, 2) if wall_s > 0 else None,
        "rss_start_mb": round(rss[0], 1) if rss else None,
        "rss_peak_mb": round(max(rss), 1) if rss else None,
        "rss_end_mb": round(rss[-1], 1) if rss else None,
        "rss_growth_mb": round(max(rss) - rss[0], 1) if rss else None,
        "rss_timeline_mb": [round(rss[int(round(f * (len(rss) - 1)))], 1) for f in np.linspace(0, 1, 6)] if rss else [],
        "warmup": warmup_outcome,
        "examples": {  # one message per non-answer kind, to read
            f"{r.outcome}:{r.reason}": r.message for r in records if r.outcome != ANSWERED
        },
        "records": [asdict(r) for r in records],
    }


def write_load_files(
    folder: str | Path, max_seconds: float, max_file_mb: float, sr: int = 16_000
) -> list[tuple[Path, str]]:
    """Small WAVs for a load test against a demo with these limits, with the outcome each should get:
    three short loops (answered), an undecodable file, one longer than `max_seconds` (under the size limit)
    and one over `max_file_mb` (all refused)."""
    import soundfile as sf

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)

    def loop(seconds: float, freq: float) -> np.ndarray:
        t = np.arange(int(seconds * sr)) / sr
        tone = np.sin(2 * np.pi * freq * t) * np.exp(-6.0 * (t % 0.5))
        return (0.4 * tone + 0.01 * rng.standard_normal(t.size)).astype(np.float32)

    out: list[tuple[Path, str]] = []
    for name, wave in (("bass.wav", loop(1.5, 110.0)), ("low.wav", loop(1.0, 82.0)), ("noise.wav", None)):
        wave = (0.3 * rng.standard_normal(sr)).astype(np.float32) if wave is None else wave
        sf.write(folder / name, wave, sr, subtype="PCM_16")
        out.append((folder / name, ANSWERED))
    corrupt = folder / "corrupt.wav"
    corrupt.write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt this is not audio" + bytes(rng.integers(0, 256, 2048, np.uint8)))
    out.append((corrupt, REFUSED))
    long_seconds = max_seconds + 2.0
    if long_seconds * sr * 2 >= max_file_mb * 1e6 * 0.9:
        raise ValueError("max_seconds is too long for max_file_mb: the over-long file would also be too large")
    sf.write(folder / "too_long.wav", loop(long_seconds, 98.0), sr, subtype="PCM_16")
    out.append((folder / "too_long.wav", REFUSED))
    big = folder / "too_large.wav"
    n = int(1.2 * max_file_mb * 2**20 / 2) + 1  # above both the MB and the MiB reading of the limit
    sf.write(big, (0.1 * rng.standard_normal(n)).astype(np.float32), sr, subtype="PCM_16")
    out.append((big, REFUSED))
    return out


def start_demo(
    model: str | Path,
    port: int,
    demo_args: Sequence[str] = (),
    ready_timeout_s: float = 120.0,
    log_path: str | Path | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.Popen:
    """Start `loop-svdd demo MODEL --host 127.0.0.1 --port PORT ...` and wait until it answers /config; on
    failure or timeout the process is stopped and RuntimeError says why (with the log's tail)."""
    script = Path(sys.executable).with_name("loop-svdd")
    cmd = (
        [str(script)]
        if script.exists()
        else [sys.executable, "-c", "import sys; from loop_svdd.cli import main; sys.exit(main())"]
    )
    cmd += ["demo", str(model), "--host", "127.0.0.1", "--port", str(port), *demo_args]
    log = open(log_path, "wb") if log_path else subprocess.DEVNULL
    full_env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", **(env or {})}
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=full_env, start_new_session=True)
    if log_path:
        log.close()
    url = f"http://127.0.0.1:{port}/config"
    deadline = time.monotonic() + ready_timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        try:
            if httpx.get(url, timeout=2.0).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    stop_demo(proc)
    tail = Path(log_path).read_text(errors="replace")[-2000:] if log_path else ""
    why = f"exited with {proc.returncode}" if proc.returncode not in (None, -15, -9) else "was not ready"
    raise RuntimeError(f"the demo server {why} within {ready_timeout_s:g} s: {' '.join(cmd)}\n{tail}")


def stop_demo(proc: subprocess.Popen, grace_s: float = 10.0) -> None:
    """Stop the server started by `start_demo` (SIGTERM to its process group, then SIGKILL)."""
    if proc.poll() is not None:
        return
    for sig, wait in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)  # its own session (start_new_session): the server and its children only
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue
