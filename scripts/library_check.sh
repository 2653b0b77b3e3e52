#!/usr/bin/env bash
# A library check as a user runs it: builds a library of 8 packs (4 instruments x 2 soundfonts of a quickstart
# corpus, each with 2 loops of other instruments of its soundfont mixed in), 10 one-loop drum-kit folders and two
# bad files; curates it, reruns it (finished packs are read back), kills a fresh run halfway (after half the
# first run's time: some packs finished, others not) and resumes it,
# then compares the rankings and prints each pack's stray AUROC and calls.
# Usage: bash scripts/library_check.sh CORPUS WORK_DIR   (CORPUS: e.g. quickstart-output/corpus)
set -euo pipefail
corpus=$1 work=$2
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1
py=.venv/bin/python
rm -rf "$work" && mkdir -p "$work"
$py - "$corpus" "$work" <<'PY'
import json, shutil, sys
from pathlib import Path
import datasets, numpy as np
from loop_svdd.audio.corpora import load_corpus
d = load_corpus(sys.argv[1]); work = Path(sys.argv[2]); root = work / "library"
paths = [a["path"] for a in d.cast_column("audio", datasets.Audio(decode=False))["audio"]]
inst, src, rng, labels = d["instrument"], d["source"], np.random.default_rng(0), {}
for s in ["FluidR3_GM", "TimGM6mb"]:
    for i in ["bass", "keys", "guitar", "drums"]:
        (root / s / i).mkdir(parents=True)
        own = [k for k in range(len(paths)) if inst[k] == i and src[k] == s]
        other = [k for k in range(len(paths)) if inst[k] != i and src[k] == s]
        for k, y in [(k, 0) for k in own] + [(int(k), 1) for k in rng.choice(other, 2, replace=False)]:
            shutil.copy2(paths[k], root / s / i / Path(paths[k]).name)
            labels[f"{s}/{i}/{Path(paths[k]).name}"] = y
for k in [k for k in range(len(paths)) if src[k] not in ("FluidR3_GM", "TimGM6mb", "sonic-pi")][:10]:
    (root / "hydrogen" / src[k]).mkdir(parents=True, exist_ok=True)
    shutil.copy2(paths[k], root / "hydrogen" / src[k] / Path(paths[k]).name)
(root / "TimGM6mb/keys/broken.wav").write_bytes(b"RIFF garbage")
(root / "FluidR3_GM/bass/empty.flac").write_bytes(b"")
(work / "labels.json").write_text(json.dumps(labels))
print(f"library: {len(labels)} loops in 8 packs, {sum(labels.values())} strays, 10 one-loop folders, 2 bad files")
PY
run() { local t0=$SECONDS; took=0; .venv/bin/loop-svdd curate "$work/library" --output-dir "$1" --no-progress >"$1.log" 2>&1
  took=$((SECONDS - t0)); echo "$2: exit 0 in $took s; $(grep 'do not fit their pack' "$1.log")"; }
run "$work/out" "first run"
half=$(( took / 2 > 10 ? took / 2 : 10 ))
run "$work/out" "rerun"
t0=$SECONDS; timeout -s KILL $half .venv/bin/loop-svdd curate "$work/library" --output-dir "$work/out2" --no-progress \
  >/dev/null 2>&1 || echo "fresh run killed after $((SECONDS - t0)) s, with $(find "$work/out2" -name .done.json | wc -l) of \
$(find "$work/out" -name .done.json | wc -l) packs finished"
run "$work/out2" "resumed"
cmp -s "$work/out/ranking.csv" "$work/out2/ranking.csv" && echo "ranking.csv of the resumed run: identical" \
  || echo "ranking.csv of the resumed run: DIFFERENT"
$py - "$work" <<'PY'
import collections, json, sys
from pathlib import Path
from sklearn.metrics import roc_auc_score
work = Path(sys.argv[1]); labels = json.loads((work / "labels.json").read_text())
by = collections.defaultdict(list)
for r in json.loads((work / "out/ranking.json").read_text())["loops"]:
    by[r["pack"]].append(r)
for pack, rows in by.items():
    y = [labels[r["file"]] for r in rows]; called = [r["verdict"] == "stray" for r in rows]
    hits = sum(c and t for c, t in zip(called, y)); false = sum(c and not t for c, t in zip(called, y))
    auroc = roc_auc_score(y, [r["score"] for r in rows])
    print(f"{pack}: {len(rows)} loops, stray AUROC {auroc:.3f}, {hits} of {sum(y)} strays called, {false} false")
PY
