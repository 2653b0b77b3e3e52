"""The file embedding cache is keyed by content: renamed, moved and copied files are not embedded again, new and
changed ones are, and the content hashes themselves are read back instead of re-read from disk."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import SR, small_model, synth_loop

import loop_svdd.engine.cache as cache_module
import loop_svdd.engine.content_hash as hash_module
from loop_svdd import LoopSVDDFeatureExtractor
from loop_svdd.curation import fingerprints as fp_module
from loop_svdd.curation.duplicates import find_duplicates, fingerprint_files
from loop_svdd.engine.cache import embed_files
from loop_svdd.engine.content_hash import HASH_LOG, ContentHashes, content_hash


@pytest.fixture(scope="module")
def model_and_extractor():
    model = small_model()
    return model, LoopSVDDFeatureExtractor.from_model_config(model.config)


def _write(folder, n, start=0):
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(start, start + n):
        sf.write(folder / f"loop{i:02d}.wav", synth_loop(1.0 + 0.2 * i, seed=i, freq=60.0 + 7 * i), SR)
    return sorted(folder.glob("*.wav"))


@pytest.fixture
def embedded_counts(monkeypatch):
    """The number of waveforms each call of the encoder received."""
    calls: list[int] = []
    real = cache_module.embed_waveforms
    monkeypatch.setattr(cache_module, "embed_waveforms", lambda *a, **k: calls.append(len(a[2])) or real(*a, **k))
    return calls


def _by_name(emb):
    return {f.name: emb.clip[i] for i, f in enumerate(emb.files)}


def test_only_new_and_changed_contents_are_embedded(tmp_path, model_and_extractor, embedded_counts):
    model, extractor = model_and_extractor
    pack, cache = tmp_path / "pack", tmp_path / "cache"
    first = embed_files(model, extractor, _write(pack, 6), cache, progress=False)
    assert embedded_counts == [6]
    (pack / "loop00.wav").rename(pack / "renamed.wav")  # moved: same content
    (pack / "sub").mkdir()
    shutil.copy(pack / "loop01.wav", pack / "sub" / "copy.wav")  # copied into another folder
    sf.write(pack / "loop02.wav", synth_loop(2.0, seed=99, freq=300.0), SR)  # changed in place
    _write(pack, 2, start=6)  # two new loops
    files = sorted(pack.rglob("*.wav"))
    again = embed_files(model, extractor, files, cache, progress=False)
    assert embedded_counts == [6, 3]  # the changed loop and the two new ones
    old, new = _by_name(first), _by_name(again)
    assert np.array_equal(new["renamed.wav"], old["loop00.wav"])
    assert np.array_equal(new["copy.wav"], old["loop01.wav"])
    assert not np.allclose(new["loop02.wav"], old["loop02.wav"])
    assert [f.name for f in again.files] == [f.name for f in files]  # file order kept


def test_duplicate_contents_in_one_run_are_embedded_once(tmp_path, model_and_extractor, embedded_counts):
    model, extractor = model_and_extractor
    files = _write(tmp_path / "pack", 3)
    shutil.copy(files[0], tmp_path / "pack" / "z-copy.wav")
    emb = embed_files(model, extractor, sorted((tmp_path / "pack").glob("*.wav")), tmp_path / "cache", progress=False)
    assert embedded_counts == [3] and len(emb.files) == 4
    assert np.array_equal(emb.clip[0], emb.clip[3]) and len(emb.windows) == 4


def test_bad_files_are_remembered_and_listed_under_their_current_name(tmp_path, model_and_extractor, embedded_counts):
    model, extractor = model_and_extractor
    pack = tmp_path / "pack"
    _write(pack, 3)
    (pack / "broken.wav").write_bytes(b"RIFF0000WAVEjunk")
    first = embed_files(model, extractor, sorted(pack.glob("*.wav")), tmp_path / "cache", progress=False)
    (pack / "broken.wav").rename(pack / "still-broken.wav")
    again = embed_files(model, extractor, sorted(pack.glob("*.wav")), tmp_path / "cache", progress=False)
    assert embedded_counts == [3]  # nothing decoded or embedded again
    assert [e["error"] for e in again.errors] == [e["error"] for e in first.errors]
    assert [e["file"] for e in again.errors] == [str(pack / "still-broken.wav")]


def test_hashes_are_read_back_and_a_cut_log_line_is_hashed_again(tmp_path, monkeypatch):
    files = _write(tmp_path / "pack", 3)
    log = tmp_path / HASH_LOG
    expected = [content_hash(f) for f in files]
    assert ContentHashes(tmp_path).of(files) == expected
    hashed: list = []
    monkeypatch.setattr(hash_module, "content_hash", lambda p: hashed.append(p) or content_hash(p))
    assert ContentHashes(tmp_path).of(files) == expected and hashed == []
    log.write_text(log.read_text()[:-20])  # as if killed while writing the last line
    assert ContentHashes(tmp_path).of(files) == expected and hashed == [files[-1]]
    assert ContentHashes(tmp_path).of([tmp_path / "missing.wav"]) == [None]


def test_fingerprints_are_stored_by_content_and_loaded_when_compared(tmp_path, monkeypatch):
    pack = tmp_path / "pack"
    files = _write(pack, 4)
    shutil.copy(files[1], pack / "copy.wav")
    files = sorted(pack.glob("*.wav"))
    in_memory = find_duplicates(fingerprint_files(files))
    decoded: list = []
    real = fp_module._decoded_fingerprint
    monkeypatch.setattr(fp_module, "_decoded_fingerprint", lambda p: decoded.append(p) or real(p))
    stored = fingerprint_files(files, tmp_path / "cache")
    assert len(decoded) == 4  # the copy's content was fingerprinted once
    assert all(isinstance(item, Path) for item in stored._items)  # on disk, not in memory
    assert find_duplicates(stored) == in_memory and in_memory[0]["members"] == [0, 2]
    (pack / "copy.wav").rename(pack / "moved.wav")
    again = fingerprint_files(sorted(pack.glob("*.wav")), tmp_path / "cache")
    assert len(decoded) == 4 and np.array_equal(again.n_frames, stored.n_frames[[1, 2, 3, 4, 0]])


def test_files_are_decoded_ahead_in_a_background_thread(tmp_path, model_and_extractor, monkeypatch):
    import threading

    model, extractor = model_and_extractor
    threads: list[str] = []
    real = cache_module.decode_files

    def recording(paths, sr, **options):
        threads.append(threading.current_thread().name)
        return real(paths, sr, **options)

    monkeypatch.setattr(cache_module, "decode_files", recording)
    files = _write(tmp_path / "pack", 5)
    emb = embed_files(model, extractor, files, tmp_path / "cache", chunk_size=2, progress=False)
    assert len(threads) == 3 and all(name.startswith("decode") for name in threads)
    assert [f.name for f in emb.files] == [f.name for f in files]


def test_files_longer_than_a_loop_are_listed_and_never_decoded(tmp_path, model_and_extractor, monkeypatch):
    import dataclasses

    model, extractor = model_and_extractor
    monkeypatch.setattr(cache_module, "CURATE", dataclasses.replace(cache_module.CURATE, longest_loop_s=3.0))
    pack = tmp_path / "pack"
    _write(pack, 2)  # 1.0 s and 1.2 s
    sf.write(pack / "long.wav", synth_loop(4.0), SR)
    emb = embed_files(model, extractor, sorted(pack.glob("*.wav")), tmp_path / "cache", progress=False)
    assert [f.name for f in emb.files] == ["loop00.wav", "loop01.wav"]
    assert [e["error"] for e in emb.errors] == ["too long to be a loop: 4.00 s (over 3 s)"]


def test_one_cache_folder_is_read_once_for_many_packs(tmp_path, model_and_extractor, embedded_counts, monkeypatch):
    """A library hands one CacheFolder to all its packs: the cache's chunks are indexed once, not once per pack,
    and what one pack stored is found by the next."""
    from loop_svdd.engine.cache import CacheFolder

    model, extractor = model_and_extractor
    indexed: list = []
    real = cache_module._stored
    monkeypatch.setattr(cache_module, "_stored", lambda folder: indexed.append(folder) or real(folder))
    a, b = _write(tmp_path / "a", 3), _write(tmp_path / "b", 3, start=3)
    shutil.copy(a[0], tmp_path / "b" / "copy.wav")
    cache = CacheFolder(tmp_path / "cache")
    first = embed_files(model, extractor, a, cache, progress=False)
    second = embed_files(model, extractor, sorted((tmp_path / "b").glob("*.wav")), cache, progress=False)
    assert len(indexed) == 1 and embedded_counts == [3, 3]  # the copy of a's loop was not embedded again
    assert np.allclose(_by_name(second)["copy.wav"], _by_name(first)["loop00.wav"])
    fresh = embed_files(model, extractor, b, tmp_path / "cache", progress=False)  # a new reader sees it all
    assert embedded_counts == [3, 3] and len(fresh.files) == 3
