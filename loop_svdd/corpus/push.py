"""Pushing a built corpus to the Hub (``datasets``' ``push_to_hub``, keeping this corpus's card)."""

from __future__ import annotations

from pathlib import Path


def push_corpus(out_dir: str | Path, repo_id: str, private: bool = False, token: str | None = None) -> str:
    """Load ``out_dir`` as an audiofolder, push it as Parquet, then merge our card into the Hub's README."""
    import datasets
    from huggingface_hub import DatasetCard

    out = Path(out_dir)
    ds = datasets.load_dataset("audiofolder", data_dir=str(out))
    ds.push_to_hub(repo_id, private=private, token=token)
    ours = DatasetCard.load(out / "README.md")
    try:
        pushed = DatasetCard.load(repo_id, repo_type="dataset", token=token)
        for key in ("configs", "dataset_info"):  # what push_to_hub wrote describes the Parquet files
            if key in pushed.data:
                ours.data[key] = pushed.data[key]
    except Exception:  # the card without the Hub's config still describes the data
        for key in ("configs", "dataset_info"):
            ours.data.pop(key, None)
    ours.push_to_hub(repo_id, repo_type="dataset", token=token)
    return f"https://huggingface.co/datasets/{repo_id}"
