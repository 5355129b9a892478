"""The Hugging Face cache, where pulled models live: what GGUF files it holds,
where a repository's blobs go, partial downloads, and branch refs.

The catalog finds models here, and ``download`` writes into the same layout
that huggingface_hub uses, so its tools (``hf cache``) see our files too.
"""

from __future__ import annotations

import re
from pathlib import Path


def cached_files(repo_id: str | None = None) -> list[tuple[str, Path]]:
    """GGUF files already in the Hugging Face cache: (repository, path), sorted."""
    try:
        from huggingface_hub import scan_cache_dir

        info = scan_cache_dir()
    except Exception:  # no cache yet, or a damaged one: nothing to offer
        return []
    found = []
    for repo in info.repos:
        if repo.repo_type != "model" or (repo_id and repo.repo_id != repo_id):
            continue
        for revision in repo.revisions:
            for file in revision.files:
                if file.file_name.lower().endswith(".gguf"):
                    found.append((repo.repo_id, Path(file.file_path)))
    return sorted(set(found))


def storage_folder(repo_id: str) -> Path:
    """A model repository's folder in the cache (``models--OWNER--NAME``)."""
    from huggingface_hub import constants
    from huggingface_hub.file_download import repo_folder_name

    cache = Path(constants.HF_HUB_CACHE).expanduser().resolve()
    return cache / repo_folder_name(repo_id=repo_id, repo_type="model")


def partial_size(repo_id: str) -> int:
    """Bytes kept in interrupted downloads of this repository."""
    blobs = storage_folder(repo_id) / "blobs"
    try:
        return sum(p.stat().st_size for p in blobs.glob("*.incomplete"))
    except OSError:
        return 0


def write_ref(storage: Path, revision: str, commit: str) -> None:
    """Remember which commit a branch or tag pointed to, as hf_hub_download does."""
    if revision == commit or not re.fullmatch(r"[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*", revision):
        return
    if ".." in revision.split("/"):
        return
    ref = storage / "refs" / revision
    try:
        ref.parent.mkdir(parents=True, exist_ok=True)
        if not ref.exists() or ref.read_text().strip() != commit:
            ref.write_text(commit)
    except OSError:
        pass  # only a convenience for later offline look-ups
