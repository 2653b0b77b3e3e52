"""`curate` on a library: a folder of packs, each curated within itself, near-duplicates across packs, resumable."""

from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from conftest import SR, private_mounts_work, synth_loop

from loop_svdd.cli import main

FAST = {"epochs": 5, "pretrain_epochs": 2, "ensemble_size": 1}


def _write_pack(folder: Path, n: int, freq: float, n_strays: int = 2) -> None:
    import soundfile as sf

    folder.mkdir(parents=True)
    for i in range(n):
        sf.write(folder / f"loop{i:02d}.wav", synth_loop(2.0 + i % 3, seed=i, freq=freq * (1 + 0.02 * (i % 5))), SR)
    rng = np.random.default_rng(int(freq))
    for i in range(n_strays):
        sf.write(folder / f"odd{i}.wav", (0.3 * rng.standard_normal(3 * SR)).astype(np.float32), SR)


def _snapshot(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in root.rglob("*") if p.is_file()
    }


@pytest.fixture(scope="module")
def library(tmp_path_factory) -> Path:
    import soundfile as sf

    root = tmp_path_factory.mktemp("lib") / "library"
    _write_pack(root / "VendorA" / "bass", 22, 55.0)
    _write_pack(root / "VendorA" / "keys", 22, 440.0, n_strays=1)
    _write_pack(root / "tiny", 5, 220.0, n_strays=0)
    (root / "VendorA" / "bass" / "broken.wav").write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt not audio")
    wave, _ = sf.read(root / "VendorA" / "bass" / "loop03.wav", dtype="float32")
    sf.write(root / "VendorA" / "keys" / "copy_of_bass.wav", 0.5 * wave, SR)  # a near-duplicate across packs
    return root


@pytest.fixture(scope="module")
def curated(library, encoder_dir, tmp_path_factory):
    from loop_svdd.curation import curate

    before = _snapshot(library)
    out = tmp_path_factory.mktemp("curated") / "out"
    options = {"encoder": str(encoder_dir), "detector_options": FAST, "train_model": False, "max_media": 2}
    return curate(library, out, progress=False, **options), before, options


def test_find_packs_nests_and_takes_a_depth(tmp_path):
    from loop_svdd.curation import PackError, find_packs

    for rel in ["L/V1/p1/a.wav", "L/V1/p1/sub/b.wav", "L/V1/p2/c.wav", "L/V2/d.wav", "L/e.wav"]:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"")
    lib = tmp_path / "L"
    assert find_packs(lib, "auto") == ([lib], [])  # a loose file at the top: one pack
    (lib / "e.wav").unlink()
    names = lambda found: [p.relative_to(lib).as_posix() for p in found]  # noqa: E731
    assert names(find_packs(lib, "auto")[0]) == ["V1/p1", "V1/p2", "V2"]
    packs, outside = find_packs(lib, 2)
    assert names(packs) == ["V1/p1", "V1/p2"] and names(outside) == ["V2/d.wav"]
    assert find_packs(lib, "none") == ([lib], [])
    with pytest.raises(PackError, match="--packs must be auto, none or a folder depth"):
        find_packs(lib, "deep")
    with pytest.raises(PackError, match="no folders 5 level"):
        find_packs(lib, 5)


def test_each_pack_is_ranked_within_itself(curated):
    result, _, _ = curated
    by_pack = {p["name"]: p for p in result.packs}
    assert set(by_pack) == {"VendorA/bass", "VendorA/keys", "tiny"}
    assert "only 5 readable loop" in by_pack["tiny"]["skipped"]
    assert result.packs[-1]["name"] == "tiny"  # most strays first, packs not curated last
    expected = {"VendorA/bass": {"odd0.wav", "odd1.wav"}, "VendorA/keys": {"odd0.wav", "copy_of_bass.wav"}}
    for name, strays in expected.items():
        rows = [r for r in result.rows if r["pack"] == name]
        assert {Path(r["file"]).name for r in rows[: len(strays)]} == strays
        assert [r["rank"] for r in rows] == list(range(1, len(rows) + 1))
        assert (result.output_dir / by_pack[name]["report"]).is_file()


def test_library_ranking_equals_curating_the_pack_alone(curated, library, tmp_path):
    from loop_svdd.curation import curate

    result, _, options = curated
    alone = curate(library / "VendorA" / "keys", tmp_path / "alone", progress=False, find_dupes=False, **options)
    ours = [(r["file"], r["score"]) for r in result.rows if r["pack"] == "VendorA/keys"]
    assert [Path(f).name for f, _ in ours] == [Path(r["file"]).name for r in alone.rows]
    assert np.allclose([s for _, s in ours], [r["score"] for r in alone.rows], rtol=1e-6)


def test_duplicates_across_packs_and_outputs(curated, library):
    result, before, _ = curated
    groups = result.summary["duplicates"]
    assert any(set(g["packs"]) == {"VendorA/bass", "VendorA/keys"} for g in groups)
    with open(result.output_dir / "ranking.csv") as f:
        table = list(csv.DictReader(f))
    assert len(table) == len(result.rows) == 48 and {r["pack"] for r in table} == {"VendorA/bass", "VendorA/keys"}
    assert any(r["file"] == "VendorA/keys/copy_of_bass.wav" and r["duplicate_group"] for r in table)
    page = (result.output_dir / "report.html").read_text()
    assert "packs/VendorA/bass/report.html" in page and "not curated: only 5" in page
    assert json.loads((result.output_dir / "ranking.json").read_text())["n_packs"] == 2
    assert [e["file"] for e in result.summary["unreadable"]] == ["VendorA/bass/broken.wav"]
    assert "1 file(s) unreadable" in result.summary["headline"]
    assert _snapshot(library) == before  # nothing written inside the library


def test_rerun_reuses_finished_packs_and_redoes_changed_ones(curated, library, monkeypatch):
    import soundfile as sf

    from loop_svdd.curation import curate
    from loop_svdd.curation import library as library_module

    result, _, options = curated
    done = []
    real = library_module.curate_pack
    monkeypatch.setattr(library_module, "curate_pack", lambda pack, *a, **k: done.append(pack) or real(pack, *a, **k))
    again = curate(library, result.output_dir, progress=False, **options)
    assert [p for p in done if p.name != "tiny"] == [] and again.rows == result.rows
    sf.write(library / "VendorA" / "keys" / "new.wav", synth_loop(2.0, seed=99, freq=440.0), SR)
    try:
        curate(library, result.output_dir, progress=False, **options)
    finally:
        (library / "VendorA" / "keys" / "new.wav").unlink()
    assert library / "VendorA" / "keys" in done and library / "VendorA" / "bass" not in done


def test_cli_rejects_a_bad_packs_option(library, tmp_path, capsys):
    assert main(["curate", str(library), "--output-dir", str(tmp_path / "o"), "--packs", "sideways"]) == 2
    assert "--packs must be auto, none or a folder depth" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
    assert main(["curate", str(library), "--output-dir", str(tmp_path / "o"), "--jobs", "0"]) == 2
    assert "jobs must be 'auto' or a whole number >= 1, got '0'" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


@pytest.mark.slow
def test_cli_curates_a_library(library, encoder_dir, tmp_path, capsys):
    args = ["curate", str(library), "--output-dir", str(tmp_path / "o"), "--encoder", str(encoder_dir)]
    assert main([*args, "--no-progress", "--players", "1"]) == 0  # no --pack-models: no model per pack
    captured = capsys.readouterr()
    printed = captured.out
    assert "skipped VendorA/bass/broken.wav: cannot decode" in captured.err
    assert "loops do not fit their pack, in 2 packs" in printed and "tiny: not curated" in printed
    assert (tmp_path / "o" / "packs" / "VendorA" / "bass" / "report.html").is_file()
    assert not (tmp_path / "o" / "packs" / "VendorA" / "bass" / "model").exists()


@pytest.mark.parametrize(
    ("target", "given", "expected"), [("pack", None, 100), ("library", None, 20), ("library", 7, 7)]
)
def test_players_default_to_fewer_per_pack_in_a_library(library, tmp_path, monkeypatch, target, given, expected):
    """A library's pack pages carry players for each pack's 20 most out-of-place loops (media cost ~0.14 s a
    loop); one pack keeps 100; `--players` sets either."""
    import loop_svdd.curation.library as library_module

    seen = {}
    monkeypatch.setattr(library_module, "curate_pack", lambda *a, **k: seen.update(k))
    monkeypatch.setattr(library_module, "curate_library", lambda *a, **k: seen.update(k))
    source = library / "VendorA" / "bass" if target == "pack" else library
    library_module.curate(source, tmp_path / "o", encoder="x", max_media=given)
    assert seen["max_media"] == expected


def test_a_share_is_told_the_packs_and_walks_the_library_no_more(library, tmp_path, monkeypatch):
    """The run that starts the shares walks the library once; its packs and loose files go in the shares' spec
    (JSON), and a share curates those without walking the library itself."""
    import types

    from loop_svdd.curation import library as library_module
    from loop_svdd.curation import sharding
    from loop_svdd.curation.processes import share_spec, spec_found

    found = library_module.find_packs(library)
    spec = json.loads(json.dumps(share_spec(library, tmp_path / "o", 2, "auto", found, {"encoder": "x"})))
    assert spec_found(spec) == found and len(found[0]) >= 2

    def walk(*_args, **_kwargs):
        raise AssertionError("a share walked the library")

    given = {}
    monkeypatch.setattr(library_module, "find_packs", walk)
    monkeypatch.setattr(sharding, "find_packs", walk)

    def curate_library(*args, **kwargs):
        given.update(packs=args[2], share=kwargs["share"])
        return types.SimpleNamespace(packs=args[2][1::2])

    monkeypatch.setattr(library_module, "curate_library", curate_library)
    assert sharding.main([json.dumps({**spec, "process": 1})]) == 0
    assert given == {"packs": found[0], "share": (1, 2)}


@pytest.mark.slow
@pytest.mark.parametrize("target", ["library", "pack"])
def test_curate_under_two_processes_ranks_as_one(library, encoder_dir, tmp_path, target):
    """`accelerate launch` / torchrun with 2 CPU processes, and `--jobs 2` on this machine: each process curates a
    share of the library's packs (of one pack: embeds a share of its files), then one process reads the shares back;
    the result is one process's."""
    import os
    import subprocess
    import sys

    source = library if target == "library" else library / "VendorA" / "bass"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}  # no GPU: CPU processes by themselves
    env.pop("ACCELERATE_USE_CPU", None)
    printed = {}
    torchrun = ["-m", "torch.distributed.run", "--nproc_per_node", "2"]
    for name, launcher, jobs in (("one", [], "1"), ("two", torchrun, "auto"), ("jobs", [], "2")):
        cmd = [sys.executable, *launcher, "-m", "loop_svdd.cli", "curate", str(source), "--encoder", str(encoder_dir)]
        cmd += ["--output-dir", str(tmp_path / name), "--no-progress", "--players", "1", "--repeats", "1"]
        cmd += ["--jobs", jobs]
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stderr[-2000:]
        printed[name] = proc.stdout
    did = "curated its share of" if target == "library" else "embedded its share of"
    for name in ("two", "jobs"):  # both start their shares the same way (`python -m loop_svdd.curation.sharding`)
        assert f"share 1 of 2: {did}" in printed[name] and f"share 2 of 2: {did}" in printed[name]
    assert {p.name for p in (tmp_path / "two" / "cache").glob("content-hashes*.jsonl")} == {
        "content-hashes.0.jsonl",
        "content-hashes.1.jsonl",
    }  # the run on one process found every file hashed by the shares
    one = json.loads((tmp_path / "one" / "ranking.json").read_text())
    assert len(one["loops"]) == (48 if target == "library" else 24)
    for name in ("two", "jobs"):
        two = json.loads((tmp_path / name / "ranking.json").read_text())
        assert [r["file"] for r in one["loops"]] == [r["file"] for r in two["loops"]]
        assert np.allclose([r["score"] for r in one["loops"]], [r["score"] for r in two["loops"]], rtol=1e-5)
        assert [g["files"] for g in one["duplicates"]] == [g["files"] for g in two["duplicates"]]
        if target == "library":  # every pack was read back from the shares, none curated again
            assert not [k for k in two["seconds"] if k.startswith("packs.")] and "packs.rank" in one["seconds"]
        else:  # every embedding was read from the shares' cache
            assert two["n_embedded"] == 0 and one["n_embedded"] == len(one["loops"]) + len(one["unreadable"])


@pytest.mark.slow
def test_a_full_disk_stops_in_one_line_and_the_rerun_finishes(curated, library, encoder_dir, tmp_path):
    """A real full disk: the output folder is a tmpfs (in a private mount namespace) with room for a third of
    the output. The run stops with one line naming the output folder; given room, the same command finishes the
    run, reusing what the first one finished, and nothing is written inside the library."""
    import subprocess
    import sys

    if not private_mounts_work():
        pytest.skip("needs `unshare -rm` (Linux user and mount namespaces) to mount a small tmpfs")
    result, before, _ = curated
    needed = sum(p.stat().st_size for p in result.output_dir.rglob("*") if p.is_file())
    small = max(64 * 1024, (needed // 3) // 4096 * 4096)
    out, kept = tmp_path / "out", tmp_path / "kept"
    out.mkdir()
    cmd = f"'{sys.executable}' -m loop_svdd.cli curate '{library}' --encoder '{encoder_dir}' --output-dir '{out}'"
    cmd += " --no-progress --players 1 --repeats 1"
    script = (
        f"mount -t tmpfs -o size={small} tmpfs '{out}' || exit 90\n"
        f"{cmd} > '{tmp_path}/first.out' 2> '{tmp_path}/first.err'; echo $? > '{tmp_path}/first.rc'\n"
        f"find '{out}' -name .done.json -printf '%P %T@\\n' > '{tmp_path}/done.txt'\n"
        f"mount -o remount,size=256m '{out}' || exit 91\n"
        f"{cmd} > '{tmp_path}/second.out' 2> '{tmp_path}/second.err'; echo $? > '{tmp_path}/second.rc'\n"
        f"cp -a '{out}/.' '{kept}'\n"
    )
    proc = subprocess.run(["unshare", "-rm", "sh", "-c", script], capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-2000:]
    first_err = (tmp_path / "first.err").read_text().strip().splitlines()
    assert (tmp_path / "first.rc").read_text().strip() == "2", first_err
    assert first_err == [
        f"loop-svdd curate: error: no space left on the disk of {out}; what was finished is kept there: free some "
        "space and run the same command again to go on"
    ]
    assert (tmp_path / "second.rc").read_text().strip() == "0", (tmp_path / "second.err").read_text()[-2000:]
    ranking = json.loads((kept / "ranking.json").read_text())  # the same loops as the fixture's own run
    assert {r["file"] for r in ranking["loops"]} == {r["file"] for r in result.rows}
    finished = [line.rsplit(" ", 1) for line in (tmp_path / "done.txt").read_text().splitlines()]
    for name, mtime in finished:  # a pack the first run finished was read back, not curated again
        assert abs((kept / name).stat().st_mtime - float(mtime)) < 1e-3, name
    assert not list(kept.rglob(".*.tmp")) and _snapshot(library) == before
