"""Downloading a GGUF model from the Hub into the Hugging Face cache.

A download takes a progress callback and a cancel ``threading.Event``; it
blocks (call it from a thread) and stops within one network read of the
event being set.

Why not a bare ``hf_hub_download``: it writes to a temporary file of its own
and deletes it when the transfer fails, so an interrupted multi-gigabyte
download starts again from zero. Here the partial file is kept as
``blobs/<etag>.incomplete`` (the name the cache tools recognise as an
interrupted download) and the next attempt continues it with a Range request.
The finished file is checked against the sha256 the Hub lists for it before
it is moved into place, and ``hf_hub_download`` then links it into the
snapshot exactly as it would its own download. A file that fails the check is
deleted: nothing that looks valid is left behind.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from workbench.engine.models.gguf import GGUFError
from workbench.engine.models.hf_cache import partial_size, storage_folder, write_ref
from workbench.engine.models.hub_errors import DownloadCancelled, HubError, check_online, translate
from workbench.engine.models.hub_files import HEX40, HEX64, HubFile, HubGGUF, RepoListing
from workbench.engine.models.modelinfo import ModelInfo, describe, format_bytes
from workbench.engine.sanitize import clean

# Retries of a transfer that broke after receiving data, within one pull. A
# pull that still fails keeps its partial file for the next one.
_RETRIES = 2
_RETRY_WAIT_S = 1.0
# Progress callbacks at most this often (a UI cannot draw faster anyway).
_REPORT_EVERY_S = 0.1
_HASH_BLOCK = 1 << 20


@dataclass(frozen=True)
class Progress:
    """How far a download is: bytes over all parts of the model.

    ``phase`` is "download" while bytes arrive (resumed bytes count as done)
    and "verify" while the finished file is hashed.
    """

    phase: Literal["download", "verify"]
    file: str
    done: int
    total: int

    @property
    def fraction(self) -> float:
        return self.done / self.total if self.total else 1.0


ProgressFn = Callable[[Progress], None]


@dataclass(frozen=True)
class Pulled:
    """A model now in the cache."""

    repo_id: str
    commit: str
    model: HubGGUF
    paths: tuple[Path, ...]
    info: ModelInfo | None
    notes: tuple[str, ...] = field(default_factory=tuple)
    downloaded_bytes: int = 0  # 0 when everything was already in the cache

    @property
    def path(self) -> Path:
        """The file to load (the first part of a split model)."""
        return self.paths[0]

    def to_dict(self) -> dict[str, Any]:
        return {
            "repo_id": self.repo_id,
            "commit": self.commit,
            "file": self.model.to_dict(),
            "path": str(self.path),
            "paths": [str(p) for p in self.paths],
            "header_quant": self.info.quant if self.info else None,
            "downloaded_bytes": self.downloaded_bytes,
            "notes": list(self.notes),
        }


class _Reporter:
    """Calls the progress callback, at most every ``_REPORT_EVERY_S`` and at the end."""

    def __init__(self, fn: ProgressFn | None, total: int) -> None:
        self.fn = fn
        self.total = total
        self._last = 0.0

    def __call__(self, phase: Literal["download", "verify"], file: str, done: int) -> None:
        if self.fn is None:
            return
        now = time.monotonic()
        if done >= self.total or now - self._last >= _REPORT_EVERY_S:
            self._last = now
            self.fn(Progress(phase, file, done, self.total))


def _cancelled(cancel: threading.Event | None) -> bool:
    return cancel is not None and cancel.is_set()


def _verify(
    path: Path,
    part: HubFile,
    expected_sha256: str | None,
    report: Callable[[int], None],
    cancel: threading.Event | None,
) -> None:
    """Hash the file; delete it and raise HubError("checksum") if it is not the Hub's."""
    digest = hashlib.sha256()
    git = None
    if expected_sha256 is None:
        # Not in LFS: the git blob id is the sha1 of a header and the content.
        git = hashlib.sha1(f"blob {path.stat().st_size}\0".encode(), usedforsecurity=False)
    done = 0
    with path.open("rb") as f:
        while block := f.read(_HASH_BLOCK):
            if _cancelled(cancel):
                raise DownloadCancelled()
            digest.update(block)
            if git is not None:
                git.update(block)
            done += len(block)
            report(done)
    if git is not None:
        got, want, algo = git.hexdigest(), part.blob_id or "", "git sha1"
    else:
        got, want, algo = digest.hexdigest(), expected_sha256 or "", "sha256"
    if got != want:
        path.unlink(missing_ok=True)
        raise HubError(
            f"checksum mismatch for {clean(part.path)}: the Hub lists {algo} {clean(want)[:64]}, "
            f"the downloaded file has {got}. The file was deleted; nothing was installed. Try "
            "again; if it happens again, the server (or a proxy) is sending a different file",
            "checksum",
        )


def _fetch(
    url: str,
    partial: Path,
    size: int,
    report: Callable[[int], None],
    cancel: threading.Event | None,
) -> None:
    """Bring ``partial`` up to ``size`` bytes, continuing what is already there."""
    import httpx2
    from huggingface_hub import constants
    from huggingface_hub.utils import build_hf_headers, get_session, hf_raise_for_status

    headers = build_hf_headers()  # the token from HF_TOKEN or the login, if any
    headers["Accept-Encoding"] = "identity"
    timeout = httpx2.Timeout(float(constants.HF_HUB_DOWNLOAD_TIMEOUT), connect=10.0)
    retries = _RETRIES
    while True:
        have = partial.stat().st_size if partial.exists() else 0
        if have > size:
            partial.unlink()
            have = 0
        report(have)
        if have == size:
            return
        request_headers = dict(headers)
        if have:
            request_headers["Range"] = f"bytes={have}-"
        received = 0
        try:
            with get_session().stream("GET", url, headers=request_headers, timeout=timeout) as r:
                if r.status_code == 416 and have:  # what we hold is not a prefix: start over
                    partial.unlink()
                    continue
                hf_raise_for_status(r)
                start = have if r.status_code == 206 else 0
                content_range = r.headers.get("Content-Range", "")
                if r.status_code == 206 and not content_range.startswith(f"bytes {have}-"):
                    partial.unlink()  # a range we did not ask for: never splice it in
                    continue
                with partial.open("r+b" if start and partial.exists() else "wb") as f:
                    f.seek(start)
                    f.truncate()
                    done = start
                    for chunk in r.iter_bytes():
                        if _cancelled(cancel):
                            raise DownloadCancelled()
                        f.write(chunk)
                        done += len(chunk)
                        received += len(chunk)
                        if done > size:
                            raise HubError(
                                f"the server sent more than the {size:,} bytes the Hub lists",
                                "network",
                            )
                        report(done)
            if done != size:
                raise httpx2.RemoteProtocolError(
                    f"the transfer ended at {done:,} of {size:,} bytes"
                )
            return
        except (httpx2.TransportError, httpx2.StreamError) as exc:
            if _cancelled(cancel):
                raise DownloadCancelled() from None
            if received and retries > 0:
                retries -= 1
                (cancel or threading.Event()).wait(_RETRY_WAIT_S)
                continue
            raise exc


def _download_part(
    listing: RepoListing,
    part: HubFile,
    before: int,
    reporter: _Reporter,
    cancel: threading.Event | None,
) -> tuple[Path, int]:
    """One file into the cache; its path, and the bytes fetched this time."""
    from huggingface_hub import get_hf_file_metadata, hf_hub_download, hf_hub_url
    from huggingface_hub.utils import WeakFileLock

    storage = storage_folder(listing.repo_id)
    pointer = storage / "snapshots" / listing.commit / Path(*part.path.split("/"))
    if pointer.is_file():
        reporter("download", part.path, before + part.size)
        return pointer, 0
    url = hf_hub_url(listing.repo_id, part.path, revision=listing.commit)
    meta = get_hf_file_metadata(url)
    etag = meta.etag or ""
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}", etag):  # it names a file here
        raise HubError(f"the Hub sent no usable ETag for {clean(part.path)}", "network")
    size = meta.size if meta.size is not None else part.size
    expected = part.sha256
    linked = etag.lower() if HEX64.fullmatch(etag.lower()) else None
    if expected and linked and linked != expected:
        raise HubError(
            f"the Hub's metadata for {clean(part.path)} disagree: the listing says sha256 "
            f"{expected}, the file's ETag says {linked}; refusing the download",
            "checksum",
        )
    expected = expected or linked
    if expected is None and not (part.blob_id and HEX40.fullmatch(part.blob_id)):
        raise HubError(
            f"the Hub lists no checksum for {clean(part.path)}: refusing an unverified file",
            "checksum",
        )
    if size != part.size:
        raise HubError(
            f"the Hub lists {clean(part.path)} as {part.size:,} bytes but serves {size:,}",
            "checksum",
        )
    blob = storage / "blobs" / etag
    partial = blob.with_name(etag + ".incomplete")
    lock = storage.parent / ".locks" / storage.name / f"{etag}.lock"
    blob.parent.mkdir(parents=True, exist_ok=True)
    lock.parent.mkdir(parents=True, exist_ok=True)
    fetched = 0
    with WeakFileLock(lock):
        if not blob.exists():
            free = shutil.disk_usage(blob.parent).free
            have = partial.stat().st_size if partial.exists() else 0
            if free < size - have:
                raise HubError(
                    f"not enough disk space for {clean(part.path)}: it needs "
                    f"{format_bytes(size - have)} more, {format_bytes(free)} is free in "
                    f"{blob.parent}",
                    "disk",
                )
            _fetch(url, partial, size, lambda d: reporter("download", part.path, before + d),
                   cancel)  # fmt: skip
            fetched = size - have
            src = partial
        else:
            src = blob  # put there by another tool: checked like our own
        _verify(src, part, expected, lambda d: reporter("verify", part.path, before + d), cancel)
        if src is partial:
            os.chmod(partial, 0o666 & ~_umask())
            os.replace(partial, blob)
    # The blob is in place: hf_hub_download only links it into the snapshot.
    path = Path(hf_hub_download(listing.repo_id, part.path, revision=listing.commit))
    write_ref(storage, listing.revision, listing.commit)
    return path, fetched


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def download(
    listing: RepoListing,
    model: HubGGUF,
    *,
    progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
) -> Pulled:
    """Download every part of ``model`` into the Hugging Face cache, verified.

    Blocks; call it from a thread. ``progress`` gets a Progress at most every
    0.1 s; setting ``cancel`` stops the download soon after (DownloadCancelled),
    keeping the partial file so the next call continues it. Raises HubError.
    """
    if not model.complete:
        raise HubError(f"{model.label} is missing parts on the Hub", "not_found")
    check_online(listing.repo_id)
    reporter = _Reporter(progress, model.size)
    paths: list[Path] = []
    fetched = 0
    before = 0
    current = model.parts[0]
    try:
        for part in model.parts:
            current = part
            path, got = _download_part(listing, part, before, reporter, cancel)
            paths.append(path)
            fetched += got
            before += part.size
    except DownloadCancelled:
        raise DownloadCancelled(
            "download cancelled; the part already downloaded is kept and the next pull "
            "continues from there"
        ) from None
    except HubError:
        raise
    except Exception as exc:
        error = translate(exc, listing.repo_id, current.path)
        kept = partial_size(listing.repo_id)
        if kept and error.kind in ("network", "error"):
            error = HubError(
                f"download of {clean(current.path)} interrupted: {error.message}. "
                f"{format_bytes(kept)} is kept; run the same pull again to continue",
                "interrupted",
            )
        raise error from None
    notes = []
    info: ModelInfo | None = None
    try:
        info = describe(paths[0])
    except GGUFError as exc:
        notes.append(f"the file is what the Hub has, but its header cannot be read: {exc}")
    if info is not None and model.quant != "?" and info.quant.upper() != model.quant.upper():
        notes.append(f"the file name says {model.quant}; the header says {info.quant}")
    return Pulled(
        repo_id=listing.repo_id,
        commit=listing.commit,
        model=model,
        paths=tuple(paths),
        info=info,
        notes=tuple(notes),
        downloaded_bytes=fetched,
    )
