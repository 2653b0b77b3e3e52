"""Pushing a built corpus to the Hub (``datasets``' ``push_to_hub``, keeping this corpus's card)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

HUB_CARD_KEYS = ("configs", "dataset_info")  # what push_to_hub writes into the card: it describes the Parquet files


def merge_hub_card(ours: Any, repo_id: str, token: str | None = None) -> None:
    """Copy `HUB_CARD_KEYS` from the card `push_to_hub` wrote into ours. Where that card cannot be read back (the
    Hub unreachable, no README, YAML it cannot parse), say so on stderr and push ours without them: it still
    describes the data, and the Hub reads the Parquet files without the configs."""
    from huggingface_hub import DatasetCard
    from huggingface_hub.errors import EntryNotFoundError

    try:
        pushed = DatasetCard.load(repo_id, repo_type="dataset", token=token)
    except (OSError, ValueError, EntryNotFoundError) as err:  # Hub, offline, network: OSError; bad YAML: ValueError
        why = (str(err).strip().splitlines() or [""])[0]
        print(
            f"loop-svdd corpus push: warning: cannot read back the card of {repo_id} ({type(err).__name__}: {why}); "
            "pushing ours without its Parquet configs",
            file=sys.stderr,
        )
        for key in HUB_CARD_KEYS:
            ours.data.pop(key, None)
        return
    for key in HUB_CARD_KEYS:
        if key in pushed.data:
            ours.data[key] = pushed.data[key]


def push_corpus(out_dir: str | Path, repo_id: str, private: bool = False, token: str | None = None) -> str:
    """Load ``out_dir`` as an audiofolder, push it as Parquet, then merge our card into the Hub's README."""
    import datasets
    from huggingface_hub import DatasetCard

    out = Path(out_dir)
    ds = datasets.load_dataset("audiofolder", data_dir=str(out))
    ds.push_to_hub(repo_id, private=private, token=token)
    ours = DatasetCard.load(out / "README.md")
    merge_hub_card(ours, repo_id, token)
    ours.push_to_hub(repo_id, repo_type="dataset", token=token)
    return f"https://huggingface.co/datasets/{repo_id}"
