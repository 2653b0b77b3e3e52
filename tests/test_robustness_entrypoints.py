"""The bad-and-odd audio matrix (tests/audio_cases.py, 27 cases) through every entry point that reads audio:
`train`, `evaluate`, `embed`, `pretrain-encoder`, `curate` and `score`, each run once on one corpus holding every case.
Every bad file must be skipped and named with its plain reason (in the output and in the run's summary), every
good file used, and the run must finish (exit 0, no traceback)."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import shutil
from pathlib import Path

import pytest
from audio_cases import BAD_CASES, CASES
from conftest import SR, synth_loop

from loop_svdd.cli import main

TRAIN = ["--ensemble", "1", "--hidden-dims", "32", "8", "--epochs", "3", "--pretrain-epochs", "2", "--no-progress"]


def run_cli(args: list[str]) -> tuple[int, str, str]:
    """Run `loop-svdd ARGS` in this process: (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in args])
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def matrix_corpus(tmp_path_factory) -> Path:
    """An audiofolder: `bass/` holds every matrix case plus 6 good loops, `keys/` 5 good loops (the anomalies)."""
    import soundfile as sf

    root = tmp_path_factory.mktemp("matrix")
    (root / "bass").mkdir()
    (root / "keys").mkdir()
    for case, (make, _) in CASES.items():
        scratch = tmp_path_factory.mktemp(case)
        made = make(scratch)
        shutil.move(made, root / "bass" / f"{case}{made.suffix}")
    for i in range(6):
        sf.write(root / "bass" / f"good-bass-{i}.flac", synth_loop(2.0, seed=i, freq=55.0 * (1 + 0.03 * i)), SR)
    for i in range(5):
        sf.write(root / "keys" / f"good-keys-{i}.flac", synth_loop(2.0, seed=i, freq=440.0 * (1 + 0.03 * i)), SR)
    return root


def case_file(root: Path, case: str) -> str:
    return next(p.name for p in (root / "bass").iterdir() if p.stem == case)


def good_files(root: Path, folder: str | None = None) -> set[str]:
    folders = [folder] if folder else ["bass", "keys"]
    return {p.name for f in folders for p in (root / f).iterdir() if p.stem not in BAD_CASES}


def assert_bad_files_named(root: Path, command: str, stderr: str, skipped: list[dict] | None = None) -> None:
    """Every bad case has one `loop-svdd COMMAND: skipped FILE: reason` line (and entry in `skipped`)."""
    assert "Traceback" not in stderr
    lines = [line for line in stderr.splitlines() if line.startswith(f"loop-svdd {command}: skipped ")]
    for case, reason in BAD_CASES.items():
        name = case_file(root, case)
        mine = [line for line in lines if line.split(": ")[1].endswith(f"/{name}")]
        assert len(mine) == 1 and reason in mine[0], (case, mine)
        if skipped is not None:
            (entry,) = [s for s in skipped if Path(s["file"]).name == name]
            assert reason in entry["reason"], (case, entry)
    assert len(lines) == len(BAD_CASES), lines


@pytest.fixture(scope="module")
def trained(matrix_corpus, encoder_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("trained") / "model"
    code, stdout, stderr = run_cli(
        ["train", matrix_corpus, "--normal", "label=bass", "--encoder", encoder_dir, "--output-dir", out, *TRAIN]
    )
    return out, code, stdout, stderr


@pytest.mark.slow
def test_train_skips_and_names_every_bad_file(matrix_corpus, trained):
    out, code, stdout, stderr = trained
    assert code == 0, stderr
    summary = json.loads((out / "training_summary.json").read_text())
    assert_bad_files_named(matrix_corpus, "train", stderr, summary["skipped_files"])
    assert set(summary["train_files"]) | set(summary["heldout_files"]) == good_files(matrix_corpus, "bass")
    assert f"of the scores of {summary['calibration_loops']} normal loops of the training split" in stdout
    assert summary["calibration_loops"] < 20 and "calibration loops (under 20)" in stderr  # small data is named


@pytest.mark.slow
def test_evaluate_skips_and_names_every_bad_file(matrix_corpus, trained, tmp_path):
    model = trained[0]
    code, stdout, stderr = run_cli(["evaluate", model, matrix_corpus, "--by", "label", "--json", tmp_path / "e.json"])
    assert code == 0, stderr
    report = json.loads((tmp_path / "e.json").read_text())
    assert_bad_files_named(matrix_corpus, "evaluate", stderr, report["skipped_files"])
    n_used = report["n_normal_test"] + report["n_anomaly_test"] + report["n_train"]
    assert n_used == len(good_files(matrix_corpus)) and report["n_anomaly_test"] == 5
    assert set(report["detectors"]["loop_svdd"]["per_group_auroc"]) == {"keys"}  # folder names, not 0/1
    assert "| AUROC keys |" in stdout


def test_embed_skips_and_names_every_bad_file(matrix_corpus, encoder_dir, tmp_path):
    code, stdout, stderr = run_cli(
        ["embed", matrix_corpus, "--output-dir", tmp_path, "--encoder", encoder_dir, "--no-progress"]
    )
    assert code == 0, stderr
    with open(tmp_path / "skipped.csv", newline="") as f:
        skipped = list(csv.DictReader(f))
    assert_bad_files_named(matrix_corpus, "embed", stderr, skipped)
    with open(tmp_path / "index.csv", newline="") as f:
        index = list(csv.DictReader(f))
    assert {r["file"] for r in index} == good_files(matrix_corpus)
    assert {r["folder"] for r in index} == {"bass", "keys"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["index.csv", "nff.npy", "skipped.csv"]  # no leftovers


def test_pretrain_encoder_skips_and_names_every_bad_file(matrix_corpus, tmp_path):
    args = ["pretrain-encoder", matrix_corpus, "--output-dir", tmp_path, "--steps", "1", "--batch-size", "2"]
    code, stdout, stderr = run_cli([*args, "--no-progress"])
    assert code == 0, stderr
    assert_bad_files_named(matrix_corpus, "pretrain-encoder", stderr)
    n_good = len(good_files(matrix_corpus)) - 1  # the 10 ms loop is too short to frame, and says so
    assert f"pretrained on {n_good} loops of {matrix_corpus}, {len(BAD_CASES)} undecodable file(s) skipped" in stdout
    assert "left out 1 loop(s) too short to frame" in stderr


def test_score_skips_and_names_every_bad_file(matrix_corpus, encoder_dir):
    code, stdout, stderr = run_cli(["score", encoder_dir, matrix_corpus, "--json"])
    assert code == 0, stderr
    report = json.loads(stdout)
    assert_bad_files_named(
        matrix_corpus, "score", stderr, [{"file": e["file"], "reason": e["error"]} for e in report["errors"]]
    )
    assert {Path(r["file"]).name for r in report["results"]} == good_files(matrix_corpus)


def test_subfolder_names_are_class_names_and_unknown_values_are_listed(matrix_corpus, encoder_dir, tmp_path):
    args = ["train", matrix_corpus, "--normal", "label=beats", "--encoder", encoder_dir, "--output-dir", tmp_path]
    code, _, stderr = run_cli([*args, *TRAIN])
    assert (
        code == 2 and stderr.strip() == "loop-svdd train: error: no loop has label=beats; values of 'label': bass, keys"
    )
    assert not (tmp_path / "config.json").exists()


@pytest.mark.parametrize(
    "args, message",
    [
        (["train", "nonexist_dir", "--output-dir", "{tmp}/m"], "no such file or folder: nonexist_dir"),
        (["evaluate", "nomodel", "{corpus}"], "no such file or folder: nomodel"),
        (["score", "nomodel", "f.ogg"], "no such file or folder: nomodel"),
        (["embed", "./missing/corpus", "--output-dir", "{tmp}/e"], "no such file or folder: ./missing/corpus"),
        (["pretrain-encoder", "missing.d", "--output-dir", "{tmp}/p"], "no such file or folder: missing.d"),
        (
            ["train", "{corpus}", "--encoder", "nonexist_enc", "--output-dir", "{tmp}/m"],
            "--encoder: no such file or folder: nonexist_enc",
        ),
        (
            ["train", "org/name", "--output-dir", "{tmp}/m"],
            "cannot load the corpus 'org/name': no local file or folder",
        ),
    ],
)
def test_missing_local_paths_are_not_hub_errors(args, message, matrix_corpus, tmp_path):
    args = [a.format(tmp=tmp_path, corpus=matrix_corpus) for a in args]
    code, _, stderr = run_cli(args)
    assert code == 2 and message in stderr and len(stderr.strip().splitlines()) == 1, stderr
    if "org/name" not in args:
        assert "Hub" not in stderr and "huggingface.co" not in stderr


def test_score_with_nothing_scorable_fails(matrix_corpus, encoder_dir):
    bad = [matrix_corpus / "bass" / case_file(matrix_corpus, c) for c in BAD_CASES]
    code, _, stderr = run_cli(["score", encoder_dir, *bad])
    assert code == 2 and stderr.strip().splitlines()[-1] == (
        f"loop-svdd score: error: no file could be scored ({len(BAD_CASES)} skipped, none left)"
    )


def test_small_data_warnings_reach_the_model_card(tmp_path):
    from model_folders import SUMMARY, build_model_folder

    from loop_svdd.audio.corpora import small_data_warnings
    from loop_svdd.hub.card import generate_model_card
    from loop_svdd.models.model_io import write_json_atomic

    folder = build_model_folder(tmp_path / "m")
    assert "small training data" not in generate_model_card(folder, "me/bass")
    warnings = small_data_warnings(n_train=12, n_calibration=3)
    write_json_atomic(folder / "training_summary.json", {**SUMMARY, "warnings": warnings})
    card = generate_model_card(folder, "me/bass")
    assert len(warnings) == 2 and all(f"**Warning: small training data.** {w}." in card for w in warnings)
    assert small_data_warnings(n_train=20, n_calibration=20, n_test=10) == []


@pytest.mark.slow
def test_curate_skips_and_names_every_bad_file(matrix_corpus, encoder_dir, tmp_path):
    out = tmp_path / "curated"
    args = ["curate", matrix_corpus, "--output-dir", out, "--encoder", encoder_dir, "--folds", "2", "--allow-small"]
    args += ["--packs", "none"]  # bass/ and keys/ as one pack: the keys loops are its strays
    code, _, stderr = run_cli([*args, "--no-model", "--players", "2", "--no-progress"])
    assert code == 0, stderr
    assert_bad_files_named(matrix_corpus, "curate", stderr)
    ranking = json.loads((out / "ranking.json").read_text())
    assert {Path(r["file"]).name for r in ranking["loops"]} == good_files(matrix_corpus)
    assert {Path(e["file"]).name for e in ranking["unreadable"]} == {case_file(matrix_corpus, c) for c in BAD_CASES}
    assert "Traceback" not in (out / "report.html").read_text()
