"""Model descriptions kept between catalog scans (``engine/models/infocache.py``)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from test_gguf import minimal_gguf, write  # type: ignore[import-not-found]

from workbench.engine import paths
from workbench.engine.config import Settings
from workbench.engine.models import infocache
from workbench.engine.models.catalog import build_catalog
from workbench.engine.models.gguf import GGUFError
from workbench.engine.models.infocache import InfoCache
from workbench.engine.models.modelinfo import describe


def no_reading(path: object) -> None:
    raise AssertionError(f"read {path} although it is cached")


def test_an_unchanged_file_is_described_from_the_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = write(tmp_path / "tiny.gguf", minimal_gguf({"general.name": "Tiny One"}))
    first = InfoCache.load()
    info = first.describe(model)
    first.save()
    assert (first.hits, first.reads) == (0, 1)
    assert (paths.cache_dir() / infocache.FILE_NAME).is_file()

    monkeypatch.setattr(infocache, "describe", no_reading)
    again = InfoCache.load()
    assert again.describe(model) == info == describe(model)
    assert (again.hits, again.reads) == (1, 0)


@pytest.mark.parametrize("change", ["size", "mtime"])
def test_a_changed_file_is_read_again(tmp_path: Path, change: str) -> None:
    model = write(tmp_path / "tiny.gguf", minimal_gguf({"general.name": "Before"}))
    cache = InfoCache.load()
    assert cache.describe(model).name == "Before"
    cache.save()
    stat = model.stat()
    if change == "size":
        write(model, minimal_gguf({"general.name": "After, longer"}))
    else:  # same size, another modification time
        write(model, minimal_gguf({"general.name": "Afte_"}))
        os.utime(model, ns=(stat.st_atime_ns, stat.st_mtime_ns - 10**9))
        assert model.stat().st_size == stat.st_size
    cache = InfoCache.load()
    assert cache.describe(model).name.startswith("Afte")
    assert cache.reads == 1


def test_a_file_that_broke_is_refused_and_forgotten(tmp_path: Path) -> None:
    model = write(tmp_path / "tiny.gguf", minimal_gguf())
    cache = InfoCache.load()
    cache.describe(model)
    cache.save()
    write(model, minimal_gguf()[:40])
    cache = InfoCache.load()
    with pytest.raises(GGUFError, match="truncated"):
        cache.describe(model)
    cache.save()
    stored = json.loads((paths.cache_dir() / infocache.FILE_NAME).read_text())
    assert stored["models"] == {}


@pytest.mark.parametrize(
    "content",
    [
        "not json",
        json.dumps({"version": 999, "models": {}}),
        json.dumps({"version": infocache.VERSION, "models": []}),
        "ENTRY",
    ],
)
def test_a_damaged_cache_is_ignored(tmp_path: Path, content: str) -> None:
    model = write(tmp_path / "tiny.gguf", minimal_gguf({"general.name": "Real"}))
    if content == "ENTRY":  # a well-formed file whose entry has a wrong field
        cache = InfoCache.load()
        cache.describe(model)
        cache.save()
        path = paths.cache_dir() / infocache.FILE_NAME
        doc = json.loads(path.read_text())
        next(iter(doc["models"].values()))["info"]["n_params"] = "many"
        content = json.dumps(doc)
    path = paths.cache_dir() / infocache.FILE_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content)
    cache = InfoCache.load()
    info = cache.describe(model)
    assert info.name == "Real" and info.n_params == 4
    assert cache.reads == 1


def test_an_unwritable_cache_costs_nothing(tmp_path: Path) -> None:
    model = write(tmp_path / "tiny.gguf", minimal_gguf())
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    cache = InfoCache.load(blocker / infocache.FILE_NAME)
    assert cache.describe(model).n_params == 4
    cache.save()  # no error


def test_catalog_scans_read_only_new_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, default_model_paths: dict[str, Path]
) -> None:
    folder = tmp_path / "more"
    folder.mkdir()
    write(folder / "tiny.gguf", minimal_gguf())
    settings = Settings(scan_hf_cache=False, model_dirs=[folder])
    first = {e.id: e.info for e in build_catalog(settings)}
    assert first["smollm2-135m-instruct-q4_1"] is not None and first["tiny"] is not None

    monkeypatch.setattr(infocache, "describe", no_reading)
    assert {e.id: e.info for e in build_catalog(settings)} == first

    write(folder / "tiny2.gguf", minimal_gguf({"general.name": "Second"}))
    monkeypatch.undo()
    third = {e.id: e.info for e in build_catalog(settings)}
    assert third["tiny2"] is not None and third["tiny2"].name == "Second"
