"""The real-instrument loop corpus: build, load as audiofolder, determinism, pitch, CLI errors."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
import pytest

from loop_svdd.corpus.sources import HYDROGEN_DIR, SF2_DIRS, SONIC_PI_DIR

MISSING = [
    pkg
    for pkg, ok in (
        ("fluidsynth", shutil.which("fluidsynth") is not None),
        ("fluid-soundfont-gm", any((d / "FluidR3_GM.sf2").is_file() for d in SF2_DIRS)),
        ("timgm6mb-soundfont", any((d / "TimGM6mb.sf2").is_file() for d in SF2_DIRS)),
        ("hydrogen-drumkits", HYDROGEN_DIR.is_dir()),
        ("sonic-pi-samples", any(SONIC_PI_DIR.glob("loop_*.flac"))),
    )
    if not ok
]
pytestmark = pytest.mark.skipif(
    bool(MISSING), reason=f"corpus sources not installed: apt-get install {' '.join(MISSING)}"
)
N = 16


def _read_rows(path: Path) -> list[dict[str, str]]:
    with open(path / "metadata.csv", encoding="utf-8") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def corpora(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from loop_svdd.corpus import build_corpus

    root = tmp_path_factory.mktemp("corpus")
    return {
        "a": build_corpus(root / "a", N, seed=0, progress=False),
        "b": build_corpus(root / "b", N, seed=0, progress=False, num_workers=1),
        "c": build_corpus(root / "c", N, seed=1, progress=False),
    }


def test_loads_as_audiofolder(corpora: dict[str, Path]) -> None:
    import datasets

    from loop_svdd.corpus import COLUMNS

    ds = datasets.load_dataset("audiofolder", data_dir=str(corpora["a"]))["train"]
    assert len(ds) == N
    assert ds.column_names == ["audio", *COLUMNS[1:]]
    for i in (0, len(ds) - 1):
        samples = ds[i]["audio"].get_all_samples()
        assert samples.sample_rate == 48000
        assert samples.data.shape[0] == 1  # mono
        assert abs(samples.data.shape[1] / 48000 - ds[i]["duration_s"]) < 1e-3


def test_metadata_covers_sources_and_durations(corpora: dict[str, Path]) -> None:
    rows = _read_rows(corpora["a"])
    assert list(rows[0])[0] == "file_name"
    sources = {(r["source_kind"], r["source"]) for r in rows}
    assert {("soundfont", "FluidR3_GM"), ("soundfont", "TimGM6mb")} <= sources
    assert any(kind == "drumkit" for kind, _ in sources)
    assert ("recording", "sonic-pi") in sources
    durations = [float(r["duration_s"]) for r in rows]
    assert min(durations) < 10 < max(durations)
    for r in rows:
        assert 70 <= float(r["bpm"]) <= 180 and 1 <= int(r["bars"]) <= 8
        assert r["licence"] and r["seed"] == "0"
        if r["source_kind"] == "soundfont":
            assert r["licence"] == {"FluidR3_GM": "MIT", "TimGM6mb": "GPL-2.0-only"}[r["source"]]
            assert int(r["program"]) >= 0
        else:
            assert r["program"] == "-1"


def test_audio_is_normalised_and_not_silent(corpora: dict[str, Path]) -> None:
    import soundfile as sf

    for r in _read_rows(corpora["a"]):
        info = sf.info(str(corpora["a"] / r["file_name"]))
        assert (info.samplerate, info.channels, info.subtype, info.format) == (48000, 1, "PCM_24", "FLAC")
        audio, _ = sf.read(str(corpora["a"] / r["file_name"]))
        assert abs(np.max(np.abs(audio)) - 10 ** (-1 / 20)) < 1e-3
        assert np.sqrt(np.mean(audio**2)) > 0.01, r["file_name"]


def test_deterministic_for_a_seed_and_disjoint_across_seeds(corpora: dict[str, Path]) -> None:
    import soundfile as sf

    a, b, c = (_read_rows(corpora[k]) for k in "abc")
    assert a == b
    for r in a:
        x, _ = sf.read(str(corpora["a"] / r["file_name"]))
        y, _ = sf.read(str(corpora["b"] / r["file_name"]))
        np.testing.assert_array_equal(x, y)
        assert (corpora["a"] / r["file_name"]).read_bytes() == (corpora["b"] / r["file_name"]).read_bytes()
    assert not {r["content_id"] for r in a} & {r["content_id"] for r in c}


def test_card_has_yaml_and_licences(corpora: dict[str, Path]) -> None:
    import yaml

    text = (corpora["a"] / "README.md").read_text()
    meta = yaml.safe_load(text.split("---")[1])
    assert meta["license"] == "other" and "audio-classification" in meta["task_categories"]
    assert meta["pretty_name"] and meta["size_categories"] == ["n<1K"]
    assert "| soundfont | FluidR3_GM |" in text and "GPL-2.0-only" in text and "CC0-1.0" in text
    assert "--seed 0" in text


def _f0(x: np.ndarray, sr: int = 48000) -> float:
    """Fundamental by autocorrelation: the first lag whose peak is near the global one."""
    x = x - x.mean()
    r = np.fft.irfft(np.abs(np.fft.rfft(x, 2 * len(x))) ** 2)[: len(x)]
    lo, hi = sr // 600, sr // 30
    seg = r[lo:hi]
    peaks = [i for i in range(1, len(seg) - 1) if seg[i] >= seg[i - 1] and seg[i] >= seg[i + 1]]
    best = max(seg[i] for i in peaks)
    i = next(i for i in peaks if seg[i] >= 0.85 * best)
    a, b, c = seg[i - 1], seg[i], seg[i + 1]
    return sr / (lo + i + 0.5 * (a - c) / (a - 2 * b + c))


@pytest.mark.parametrize("soundfont", ["FluidR3_GM", "TimGM6mb"])
def test_rendered_bass_pitch_matches_midi(soundfont: str) -> None:
    from loop_svdd.corpus.compose import one_note
    from loop_svdd.corpus.render import LoopSpec, render_soundfont_batch
    from loop_svdd.corpus.sources import find_fluidsynth, find_soundfont

    sfont = find_soundfont(soundfont)
    specs = []
    for i, pitch in enumerate((40, 45, 52)):
        pattern = one_note(pitch, bars=1)
        specs.append(
            LoopSpec(
                i,
                "bass",
                "soundfont",
                sfont.name,
                33,
                "Bass",
                120.0,
                pattern.key,
                1,
                "one-note",
                "",
                pattern.notes,
                str(sfont.path),
            )
        )
    for spec, audio in zip(specs, render_soundfont_batch(find_fluidsynth(), specs), strict=True):
        assert audio is not None
        f0 = _f0(audio[4800 : 4800 + 24000])
        expected = 440.0 * 2 ** ((spec.notes[0].pitch - 69) / 12)
        assert abs(12 * np.log2(f0 / expected)) < 0.5, (soundfont, spec.notes[0].pitch, f0, expected)


def test_filters_select_sources() -> None:
    from loop_svdd.corpus.plan import Planner

    specs = Planner(3, instruments=["bass"], sources=["FluidR3_GM"]).plan(12)
    assert {(s.instrument, s.source) for s in specs} == {("bass", "FluidR3_GM")}
    kits = Planner(3, sources=["drumkit"]).plan(12)
    assert {s.source_kind for s in kits} == {"drumkit"} and len({s.source for s in kits}) == 12
    both = Planner(3, instruments=["bass"]).plan(8)
    assert {s.source for s in both} == {"FluidR3_GM", "TimGM6mb"}


def test_cli_refuses_non_empty_dir(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from loop_svdd.cli import main

    (tmp_path / "notes.txt").write_text("keep me")
    assert main(["corpus", "build", str(tmp_path), "--loops", "2", "--no-progress"]) == 2
    assert "not empty" in capsys.readouterr().err
    assert main(["corpus", "build", str(tmp_path), "--loops", "2", "--overwrite", "--no-progress"]) == 2
    assert "refusing" in capsys.readouterr().err
    assert (tmp_path / "notes.txt").read_text() == "keep me"
    assert main(["corpus", "push", str(tmp_path), "--repo-id", "me/loops"]) == 2
    assert "no corpus" in capsys.readouterr().err


def test_cli_names_missing_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    from loop_svdd.cli import main
    from loop_svdd.corpus import sources

    monkeypatch.setattr(sources.shutil, "which", lambda name: None)
    assert main(["corpus", "build", str(tmp_path / "x"), "--loops", "2"]) == 2
    assert "apt-get install fluidsynth" in capsys.readouterr().err
    monkeypatch.undo()
    assert main(["corpus", "build", str(tmp_path / "y"), "--loops", "2", "--soundfonts", "Nope"]) == 2
    assert "unknown soundfont" in capsys.readouterr().err


def test_cli_build_small(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from loop_svdd.cli import main

    out = tmp_path / "loops"
    args = ["corpus", "build", str(out), "--loops", "3", "--seed", "5", "--instruments", "keys", "--no-progress"]
    assert main(args) == 0
    assert "wrote 3 loops" in capsys.readouterr().out
    assert {r["instrument"] for r in _read_rows(out)} == {"keys"}
    assert main([*args, "--overwrite"]) == 0


def test_push_uses_push_to_hub(corpora: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    import datasets
    import huggingface_hub

    from loop_svdd.corpus.push import push_corpus

    calls: list[tuple[str, object]] = []
    monkeypatch.setattr(datasets.DatasetDict, "push_to_hub", lambda self, repo, **kw: calls.append((repo, self)))
    monkeypatch.setattr(huggingface_hub.DatasetCard, "push_to_hub", lambda self, repo, **kw: calls.append((repo, self)))
    push_corpus(corpora["a"], "me/loops")
    assert [c[0] for c in calls] == ["me/loops", "me/loops"]
    assert len(calls[0][1]["train"]) == N and "Sources, counts and licences" in calls[1][1].text


@pytest.mark.parametrize("readable", [True, False])
def test_push_merges_the_hubs_card_or_says_why_not(
    corpora: dict[str, Path], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], readable: bool
) -> None:
    """The card push_to_hub wrote gives ours its Parquet configs; where it cannot be read back, one stderr line."""
    import datasets
    import huggingface_hub
    from huggingface_hub.errors import OfflineModeIsEnabled

    from loop_svdd.corpus.push import push_corpus

    load, pushed = huggingface_hub.DatasetCard.load, []

    def fake_load(source, **kwargs):
        if isinstance(source, Path):
            return load(source, **kwargs)
        if not readable:
            raise OfflineModeIsEnabled("Cannot reach https://huggingface.co: offline mode is enabled.")
        return huggingface_hub.DatasetCard("---\nconfigs:\n- config_name: default\n---\nthe Hub's card\n")

    monkeypatch.setattr(datasets.DatasetDict, "push_to_hub", lambda self, repo, **kw: None)
    monkeypatch.setattr(huggingface_hub.DatasetCard, "load", fake_load)
    monkeypatch.setattr(huggingface_hub.DatasetCard, "push_to_hub", lambda self, repo, **kw: pushed.append(self))
    push_corpus(corpora["a"], "me/loops")
    err = capsys.readouterr().err
    assert "Sources, counts and licences" in pushed[0].text
    if readable:
        assert pushed[0].data["configs"] == [{"config_name": "default"}] and err == ""
    else:
        assert "configs" not in pushed[0].data and err == (
            "loop-svdd corpus push: warning: cannot read back the card of me/loops (OfflineModeIsEnabled: Cannot "
            "reach https://huggingface.co: offline mode is enabled.); pushing ours without its Parquet configs\n"
        )


def test_push_lets_an_unexpected_error_through(corpora: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the Hub's expected failures are turned into a warning; a bug is not swallowed."""
    import datasets
    import huggingface_hub

    from loop_svdd.corpus.push import push_corpus

    load = huggingface_hub.DatasetCard.load

    def broken(source, **kwargs):
        if isinstance(source, Path):
            return load(source, **kwargs)
        raise KeyError("a bug")

    monkeypatch.setattr(datasets.DatasetDict, "push_to_hub", lambda self, repo, **kw: None)
    monkeypatch.setattr(huggingface_hub.DatasetCard, "load", broken)
    with pytest.raises(KeyError, match="a bug"):
        push_corpus(corpora["a"], "me/loops")
