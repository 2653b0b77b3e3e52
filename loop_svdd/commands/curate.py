"""`loop-svdd curate PACK --output-dir DIR`: which loops of an unlabelled folder do not fit?"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

from ..settings import CURATE
from .common import ENCODER_HELP, CLIError, one_line


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "curate",
        help="rank the loops of an unlabelled folder by how little they fit; report, ranking and a clean model",
        description="Every loop is scored by detectors that never trained on it (Deep SVDD, k-NN, PCA and a "
        "kernel density, each K-fold cross-fitted with trimming, combined, averaged over fold seeds). "
        "Writes ranking.csv, ranking.json, report.html (opens offline) and model/ (a detector "
        "trained on the pack without its strays) into OUTPUT_DIR. Files in the pack are only read. An interrupted "
        "run resumes from OUTPUT_DIR/cache. Under `accelerate launch` (2+ processes) each process curates a share of "
        "a library's packs (of one pack: embeds a share of its files) into OUTPUT_DIR (a shared disk across "
        "machines), then the main one reads them back and finishes.",
    )
    p.add_argument("input", help="a folder of loops (searched recursively), or a library: a folder of packs")
    p.add_argument(
        "--packs",
        default="auto",
        help="which sub-folders are packs, each curated within itself: auto (split a folder with no loose audio "
        "and 2+ sub-folders of audio), none (the whole folder is one pack) or a depth N (default: auto)",
    )
    p.add_argument("--output-dir", required=True, help="where the ranking, report and model are written")
    p.add_argument("--folds", type=int, default=CURATE.folds, help="cross-fitting folds")
    p.add_argument(
        "--contamination",
        default="auto",
        help="'auto' (strays = loops far above the typical score) or the expected stray fraction, e.g. 0.05",
    )
    p.add_argument("--export-outliers", metavar="DIR", help="copy the strays here (the pack is never changed)")
    p.add_argument("--encoder", default=None, help=ENCODER_HELP + " (default: as for `loop-svdd train`)")
    p.add_argument("--seed", type=int, default=CURATE.seed)
    p.add_argument(
        "--repeats", type=int, default=CURATE.repeats, help="fold seeds the ranking is averaged over (more: steadier)"
    )
    p.add_argument(
        "--allow-small", action="store_true", help=f"rank packs under {CURATE.min_loops} loops anyway (with a warning)"
    )
    p.add_argument(
        "--players",
        type=int,
        default=None,
        help=f"loops with a player and spectrogram in the report (default: {CURATE.players}; in a library "
        f"{CURATE.library_players} per pack, the most out-of-place)",
    )
    p.add_argument("--no-model", action="store_true", help="skip training model/")
    p.add_argument(
        "--pack-models", action="store_true", help="in a library, train each pack's model/ too (one run per pack)"
    )
    p.add_argument("--no-duplicates", action="store_true", help="skip the search for near-duplicate loops")
    p.add_argument(
        "--jobs",
        default="auto",
        help="processes on this machine: auto (a library: one per core, up to "
        f"{CURATE.most_auto_jobs}; one pack: 1, its embedding already uses every core) or N; same result as one",
    )
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=run)


# What a launcher sets for its processes; the run on one process after the shares runs without them.
DISTRIBUTED_ENV = ("WORLD_SIZE", "RANK", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "GROUP_RANK", "GROUP_WORLD_SIZE")
DISTRIBUTED_ENV += ("ROLE_RANK", "ROLE_NAME", "ROLE_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


def curate_options(args: argparse.Namespace) -> dict:
    """The keyword arguments of `loop_svdd.curation.curate` that the command line gives."""
    return {
        "folds": args.folds,
        "contamination": args.contamination,
        "export_outliers": args.export_outliers,
        "encoder": args.encoder,
        "seed": args.seed,
        "repeats": args.repeats,
        "allow_small": args.allow_small,
        "train_model": not args.no_model,
        "max_media": args.players,
        "progress": not args.no_progress,
        "find_dupes": not args.no_duplicates,
        "packs": args.packs,
        "pack_models": args.pack_models,
        "jobs": args.jobs,
    }


def in_processes(args: argparse.Namespace) -> int | None:
    """Under a launcher with 2+ processes: each does its share ([`loop_svdd.curation.sharding`]) in a fresh
    process outside the process group (so no training inside it synchronises with the others), the same command
    ``curate --jobs`` starts, on the device the launch gave it; all wait for each other, then the main process
    curates alone, reading the shares back (a share that failed is done there). Returns the exit code; None when
    there is one process."""
    if int(os.environ.get("WORLD_SIZE", "1")) < 2:
        return None
    from datetime import timedelta

    import torch
    from accelerate import Accelerator, InitProcessGroupKwargs

    from ..curation.library import find_packs
    from ..curation.pack import PackError
    from ..curation.processes import share_command, share_spec

    wait = InitProcessGroupKwargs(timeout=timedelta(days=7))  # shares of a library may take hours apart
    state = Accelerator(cpu=not torch.cuda.is_available(), kwargs_handlers=[wait])  # CPU when there is no GPU
    k, n = state.process_index, state.num_processes
    if n < 2:  # every process would write the whole output
        raise CLIError(f"launched as {os.environ['WORLD_SIZE']} processes but accelerate sees one; launch again")
    env = {name: v for name, v in os.environ.items() if name not in DISTRIBUTED_ENV}
    env = {name: v for name, v in env.items() if not name.startswith("TORCHELASTIC_")}
    options = {**curate_options(args), "device": str(state.device)}
    options.pop("jobs")
    root, packs = Path(args.input), options.pop("packs")
    try:
        found = find_packs(root, packs)
    except PackError as err:
        raise one_line(err) from err
    spec = share_spec(root, Path(args.output_dir), n, packs, found, options)
    code = subprocess.run(share_command(spec, k), env=env, check=False).returncode
    state.wait_for_everyone()
    state.state.destroy_process_group()
    if not state.is_main_process:
        return code
    cli = [sys.executable, "-m", "loop_svdd.cli", *sys.argv[1:], "--jobs", "1"]  # the shares are done
    return subprocess.run(cli, env=env, check=False).returncode


def run(args: argparse.Namespace) -> int:
    if args.folds < 2 or (args.players or 0) < 0 or args.repeats < 1:
        raise CLIError("--folds must be >= 2, --repeats >= 1 and --players >= 0")
    if (sharded := in_processes(args)) is not None:
        return sharded
    from ..audio.decoding import report_skipped
    from ..curation import LibraryResult, PackError, curate
    from ..detectors.deep_svdd import TrainingDivergedError

    try:
        options = curate_options(args)
        result = curate(args.input, args.output_dir, **options)
    except (PackError, ValueError, OSError, TrainingDivergedError) as err:
        raise one_line(err, args.output_dir) from err
    if isinstance(result, LibraryResult):
        return print_library(result)
    s = result.summary
    report_skipped("curate", [{"file": e["file"], "reason": e["error"]} for e in s["unreadable"]])
    for w in s["warnings"]:
        print(w)
    print(s["headline"])
    for r in result.rows:
        if r["verdict"] == "stray":
            print(f"{r['rank']:>4}  {r['score']:8.3f}  {r['file']}")
    for g in s["duplicates"]:
        print(f"near-duplicates (keep {g['keep']}): {', '.join(g['files'])}")
    print(f"report: {result.output_dir / 'report.html'}; ranking: {result.output_dir / 'ranking.csv'}")
    if "model" in s:
        print(f"model of the pack without its strays: {s['model']} (loop-svdd score / demo accept it)")
    return 0


def print_library(result, top: int = 20) -> int:
    """The library's headline, the `top` packs with most strays, the duplicate groups across packs."""
    from ..audio.decoding import report_skipped

    s = result.summary
    report_skipped("curate", [{"file": e["file"], "reason": e["error"]} for e in s["unreadable"]])
    print(s["headline"])
    for p in result.packs[:top]:
        line = f"not curated: {p['skipped']}" if "skipped" in p else f"{p['n_strays']} of {p['n_loops']} do not fit"
        print(f"  {p['name']}: {line}")
    if len(result.packs) > top:
        print(f"  ... and {len(result.packs) - top} more packs in the report")
    if s["outside_packs"]:
        print(f"{len(s['outside_packs'])} file(s) lie in no pack (above --packs depth) and were not ranked")
    for g in s["duplicates"][:top]:
        print(f"near-duplicates (keep {g['keep']}): {', '.join(g['files'])}")
    print(f"report: {result.output_dir / 'report.html'}; ranking: {result.output_dir / 'ranking.csv'}")
    return 0
