"""`workbench pull` against a stand-in Hub on 127.0.0.1 (tests/hubserver.py).

huggingface_hub reads HF_ENDPOINT, HF_HOME and HF_HUB_OFFLINE when it is
imported, so every pull runs in a subprocess with those pointing at the fake
Hub and at a cache in the test's temporary folder.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import struct
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from hubserver import FakeHub  # type: ignore[import-not-found]

from workbench.engine.models.hub import (
    HubError,
    HubFile,
    RepoListing,
    _group,
    choose,
    quant_from_name,
)

SMOL_REPO = "test-org/SmolLM2-135M-Instruct-GGUF"
SMOL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
TINY_REPO = "test-org/tiny-GGUF"
TOKEN = "hf_test_token_0123456789"


def tiny_gguf(name: str, file_type: int, size: int = 1 << 20) -> bytes:
    """A small GGUF: a real header (architecture, name, file type), no tensors, filler."""

    def text(value: str) -> bytes:
        data = value.encode()
        return struct.pack("<Q", len(data)) + data

    kv = [
        (text("general.architecture"), 8, text("llama")),
        (text("general.name"), 8, text(name)),
        (text("general.file_type"), 4, struct.pack("<I", file_type)),
    ]
    head = b"GGUF" + struct.pack("<IQQ", 3, 0, len(kv))
    head += b"".join(k + struct.pack("<I", t) + v for k, t, v in kv)
    filler = (name.encode() + bytes(range(256))) * (size // 256 + 1)
    return head + filler[: size - len(head)]


@pytest.fixture(scope="module")
def hub(default_model_paths: dict[str, Path]) -> Iterator[FakeHub]:
    with FakeHub() as server:
        server.add_repo(SMOL_REPO, {SMOL_FILE: default_model_paths["smollm2"],
                                    "README.md": b"# SmolLM2 in GGUF\n"})  # fmt: skip
        server.add_repo(TINY_REPO, {
            "tiny-Q8_0.gguf": tiny_gguf("Tiny", 7),
            "quants/tiny-IQ4_XS.gguf": tiny_gguf("Tiny", 30),
            "tiny-BF16-00001-of-00003.gguf": tiny_gguf("Tiny split", 32),
            "tiny-BF16-00002-of-00003.gguf": b"second part " * 5000,
            "tiny-BF16-00003-of-00003.gguf": b"third part " * 5000,
            "config.json": b"{}",
        })  # fmt: skip
        server.add_repo("test-org/private-GGUF", {"p-Q8_0.gguf": tiny_gguf("P", 7)}, token=TOKEN)
        server.add_repo("test-org/gated-GGUF", {"g-Q8_0.gguf": tiny_gguf("G", 7)}, gated=True)
        liar = server.add_repo("test-org/liar-GGUF", {"liar-Q8_0.gguf": tiny_gguf("Liar", 7)})
        liar.files["liar-Q8_0.gguf"].advertised_sha256 = "5" * 64
        gone = server.add_repo("test-org/gone-GGUF", {"gone-Q8_0.gguf": tiny_gguf("Gone", 7)})
        gone.files["gone-Q8_0.gguf"].gone = True
        server.add_repo("test-org/flaky-GGUF", {"flaky-Q8_0.gguf": tiny_gguf("Flaky", 7, 3 << 20)})
        yield server


def workbench(
    hub_url: str, hf_home: Path, *args: str, offline: bool = False, token: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN")}
    env.update(HF_ENDPOINT=hub_url, HF_HOME=str(hf_home), HF_HUB_OFFLINE="1" if offline else "0")
    if token:
        env["HF_TOKEN"] = token
    return subprocess.run(
        [sys.executable, "-m", "workbench", *args],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def cache_files(hf_home: Path, repo_id: str) -> list[Path]:
    folder = hf_home / "hub" / ("models--" + repo_id.replace("/", "--"))
    return sorted(p for p in folder.rglob("*") if p.is_file() or p.is_symlink())


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# -- listing ----------------------------------------------------------------------------


def test_pull_lists_gguf_files_with_quant_and_size(hub: FakeHub, tmp_path: Path) -> None:
    before = len(hub.requests(contains="/resolve/"))
    out = workbench(hub.url, tmp_path / "hf", "pull", TINY_REPO)
    assert out.returncode == 0, out.stderr
    for text in ("tiny-Q8_0.gguf", "Q8_0", "quants/tiny-IQ4_XS.gguf", "IQ4_XS", "BF16",
                 "tiny-BF16-00001-of-00003.gguf (3 parts)", "1.0 MiB"):  # fmt: skip
        assert text in out.stdout
    assert "00002-of-00003" not in out.stdout and "config.json" not in out.stdout
    assert "--quant" in out.stderr

    doc = json.loads(workbench(hub.url, tmp_path / "hf", "pull", TINY_REPO, "--json").stdout)
    split = next(f for f in doc["files"] if f["n_parts"] == 3)
    assert split["quant"] == "BF16" and split["complete"]
    assert [p["path"][-20:] for p in split["parts"]] == [
        f"-0000{i}-of-00003.gguf" for i in (1, 2, 3)
    ]
    assert len(doc["files"]) == 3 and doc["commit"] == hub.repos[TINY_REPO].commit
    assert len(hub.requests(contains="/resolve/")) == before  # listing downloads nothing


def test_quant_names_and_split_files() -> None:
    cases = {
        "Llama-3.2-1B-Instruct-Q4_K_M.gguf": "Q4_K_M",
        "gemma-3-270m-q4_k_m.gguf": "Q4_K_M",
        "SmolLM2-135M-Instruct.Q4_1.gguf": "Q4_1",
        "model.IQ4_XS.gguf": "IQ4_XS",
        "Qwen3-0.6B-BF16.gguf": "BF16",
        "phi-f16.gguf": "F16",
        "x-UD-Q4_K_XL-00001-of-00002.gguf": "Q4_K_XL",
        "model_q8_0.gguf": "Q8_0",
        "mmproj.gguf": "?",
    }
    assert {name: quant_from_name(name) for name in cases} == cases
    files = [HubFile(f"m-Q2_K-0000{i}-of-00003.gguf", 10) for i in (1, 3)]
    (split,) = _group([*files, HubFile("readme.md", 1)])
    assert split.n_parts == 3 and not split.complete and split.quant == "Q2_K"
    listing = RepoListing("o/r", "main", "c" * 40, (split,))
    with pytest.raises(HubError, match="only 2 of them"):
        choose(listing, quant="q2_k")
    with pytest.raises(HubError, match="matches --file 'nothing"):
        choose(listing, file="nothing*")


# -- downloading ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pulled(hub: FakeHub, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """SmolLM2 pulled once, for the tests that look at the result."""
    hf_home = tmp_path_factory.mktemp("pulled") / "hf"
    out = workbench(hub.url, hf_home, "pull", SMOL_REPO, "--quant", "Q4_1")
    assert out.returncode == 0, out.stderr
    return hf_home, out.stdout


@pytest.mark.slow
def test_pull_downloads_verifies_and_the_catalog_finds_it(
    hub: FakeHub, pulled: tuple[Path, str], default_model_paths: dict[str, Path]
) -> None:
    hf_home, stdout = pulled
    assert "sha256 verified" in stdout and "Q4_1 (header)" in stdout
    commit = hub.repos[SMOL_REPO].commit
    path = hf_home / "hub" / f"models--{SMOL_REPO.replace('/', '--')}" / "snapshots" / commit
    assert sha256(path / SMOL_FILE) == sha256(default_model_paths["smollm2"])
    assert not [p for p in cache_files(hf_home, SMOL_REPO) if p.name.endswith(".incomplete")]

    again = workbench(hub.url, hf_home, "pull", f"{SMOL_REPO}:Q4_1", "--json")
    assert again.returncode == 0, again.stderr
    doc = json.loads(again.stdout)
    assert doc["downloaded_bytes"] == 0 and doc["header_quant"] == "Q4_1"
    assert doc["path"] == str(path / SMOL_FILE) and doc["catalog_id"]

    models = json.loads(workbench(hub.url, hf_home, "models", "--json").stdout)["models"]
    entry = next(m for m in models if m["id"] == doc["catalog_id"])
    assert entry["source"] == f"hf:{SMOL_REPO}" and entry["quant"] == "Q4_1"


@pytest.mark.slow
def test_offline_says_so_and_pulled_models_stay_listed(
    hub: FakeHub, pulled: tuple[Path, str]
) -> None:
    hf_home, _ = pulled
    before = len(hub.seen)
    out = workbench(hub.url, hf_home, "pull", SMOL_REPO, "--quant", "Q4_1", offline=True)
    assert out.returncode == 1
    assert "offline mode is on (HF_HUB_OFFLINE=1)" in out.stderr
    assert f"Already in the cache from {SMOL_REPO}: {SMOL_FILE}" in out.stderr
    models = workbench(hub.url, hf_home, "models", "--json", offline=True)
    sources = [m["source"] for m in json.loads(models.stdout)["models"]]
    assert f"hf:{SMOL_REPO}" in sources
    assert len(hub.seen) == before  # nothing left the machine


def test_a_split_model_comes_whole_and_is_listed_once(hub: FakeHub, tmp_path: Path) -> None:
    hf_home = tmp_path / "hf"
    out = workbench(hub.url, hf_home, "pull", TINY_REPO, "--quant", "bf16")
    assert out.returncode == 0, out.stderr
    snapshot = hf_home / "hub" / "models--test-org--tiny-GGUF" / "snapshots"
    parts = sorted(p.name for p in snapshot.rglob("*.gguf"))
    assert parts == [f"tiny-BF16-0000{i}-of-00003.gguf" for i in (1, 2, 3)]
    models = json.loads(workbench(hub.url, hf_home, "models", "--json").stdout)["models"]
    mine = [m for m in models if m["source"] == f"hf:{TINY_REPO}"]
    assert len(mine) == 1 and mine[0]["path"].endswith("-00001-of-00003.gguf")
    assert mine[0]["quant"] == "BF16"


def test_an_interrupted_download_resumes_with_a_range_request(hub: FakeHub, tmp_path: Path) -> None:
    hf_home, name = tmp_path / "hf", "flaky-Q8_0.gguf"
    file = hub.repos["test-org/flaky-GGUF"].files[name]
    half = file.size // 2
    # The connection drops half-way; the retry inside the same pull meets a 503.
    hub.drop_next_get_after, hub.fail_next_gets = half, 1
    first = workbench(hub.url, hf_home, "pull", "test-org/flaky-GGUF", "--quant", "Q8_0")
    assert first.returncode == 1
    assert "interrupted" in first.stderr and "run the same pull again" in first.stderr
    kept = [p for p in cache_files(hf_home, "test-org/flaky-GGUF") if p.suffix == ".incomplete"]
    assert len(kept) == 1 and kept[0].stat().st_size == half
    assert not list((hf_home / "hub").rglob(f"snapshots/*/{name}"))

    seen = len(hub.seen)
    second = workbench(hub.url, hf_home, "pull", "test-org/flaky-GGUF", "--quant", "Q8_0")
    assert second.returncode == 0, second.stderr
    gets = [s for s in hub.seen[seen:] if s.method == "GET" and s.path.endswith(name)]
    assert [g.header("Range") for g in gets] == [f"bytes={half}-"]
    (final,) = (hf_home / "hub").rglob(f"snapshots/*/{name}")
    assert sha256(final) == file.sha256
    assert not [p for p in cache_files(hf_home, "test-org/flaky-GGUF") if p.suffix == ".incomplete"]


def test_a_checksum_mismatch_is_refused_and_leaves_nothing(hub: FakeHub, tmp_path: Path) -> None:
    hf_home = tmp_path / "hf"
    out = workbench(hub.url, hf_home, "pull", "test-org/liar-GGUF", "--quant", "Q8_0")
    assert out.returncode == 1
    assert "checksum mismatch" in out.stderr and "nothing was installed" in out.stderr
    left = [p for p in cache_files(hf_home, "test-org/liar-GGUF") if "/.locks/" not in str(p)]
    assert not [p for p in left if "blobs" in p.parts or "snapshots" in p.parts], left
    models = json.loads(workbench(hub.url, hf_home, "models", "--json").stdout)["models"]
    assert not [m for m in models if "liar" in m["source"]]


def test_unknown_repositories_and_files_have_clear_messages(hub: FakeHub, tmp_path: Path) -> None:
    hf_home = tmp_path / "hf"
    nope = workbench(hub.url, hf_home, "pull", "test-org/nope-GGUF")
    assert nope.returncode == 1 and "test-org/nope-GGUF was not found on the Hub" in nope.stderr
    nothing = workbench(hub.url, hf_home, "pull", TINY_REPO, "--file", "nothing*.gguf")
    assert nothing.returncode == 2
    assert "no GGUF file in test-org/tiny-GGUF matches --file 'nothing*.gguf'" in nothing.stderr
    assert "tiny-Q8_0.gguf [Q8_0]" in nothing.stderr  # what there is instead
    gone = workbench(hub.url, hf_home, "pull", "test-org/gone-GGUF", "--file", "gone-*")
    assert gone.returncode == 1 and "has no file 'gone-Q8_0.gguf'" in gone.stderr
    bad = workbench(hub.url, hf_home, "pull", "not a repo")
    assert bad.returncode == 2 and "not a repository id" in bad.stderr


def test_private_and_gated_repositories_need_a_token(hub: FakeHub, tmp_path: Path) -> None:
    hf_home = tmp_path / "hf"
    hint = "run `hf auth login` or set HF_TOKEN; gated models also need you to accept"
    private = workbench(hub.url, hf_home, "pull", "test-org/private-GGUF")
    assert private.returncode == 1
    assert "this repository needs a token" in private.stderr and hint in private.stderr
    gated = workbench(hub.url, hf_home, "pull", "test-org/gated-GGUF")
    assert gated.returncode == 1
    assert "gated model: accept its licence" in gated.stderr and hint in gated.stderr

    seen = len(hub.seen)
    listed = workbench(hub.url, hf_home, "pull", "test-org/private-GGUF", token=TOKEN)
    assert listed.returncode == 0, listed.stderr
    assert "p-Q8_0.gguf" in listed.stdout
    auth = {s.header("Authorization") for s in hub.seen[seen:] if "private" in s.path}
    assert auth == {f"Bearer {TOKEN}"}
    assert TOKEN not in listed.stdout + listed.stderr


def test_an_unreachable_hub_is_a_message(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"
    out = workbench(dead, tmp_path / "hf", "pull", TINY_REPO)
    assert out.returncode == 1
    assert f"cannot reach the Hub at {dead}: connection refused" in out.stderr
    assert "Models already downloaded keep working" in out.stderr


# -- the API the app uses ---------------------------------------------------------------

_APP_SCRIPT = """
import json, sys, threading
from workbench.engine.models import hub

listing = hub.list_gguf(sys.argv[1])
model = hub.choose(listing, quant="Q8_0")
cancel = threading.Event()
seen = []

def progress(p):
    seen.append([p.phase, p.done, p.total])
    if p.phase == "download" and p.done >= p.total // 3:
        cancel.set()

try:
    hub.download(listing, model, progress=progress, cancel=cancel)
    result = "finished"
except hub.DownloadCancelled as exc:
    result = "cancelled: " + exc.message
pulled = hub.download(listing, model, progress=lambda p: seen.append([p.phase, p.done, p.total]))
print(json.dumps({"result": result, "progress": seen, "pulled": pulled.to_dict()}))
"""


def test_the_download_api_reports_progress_and_can_be_cancelled(
    hub: FakeHub, tmp_path: Path
) -> None:
    env = {k: v for k, v in os.environ.items() if k != "HF_TOKEN"}
    env.update(HF_ENDPOINT=hub.url, HF_HOME=str(tmp_path / "hf"), HF_HUB_OFFLINE="0")
    seen = len(hub.seen)
    hub.slow_after = 1 << 20  # the rest trickles in, so the cancel comes mid-way
    try:
        out = subprocess.run(
            [sys.executable, "-c", _APP_SCRIPT, "test-org/flaky-GGUF"],
            env=env, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
    finally:
        hub.slow_after = None
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["result"].startswith("cancelled: download cancelled")
    size = hub.repos["test-org/flaky-GGUF"].files["flaky-Q8_0.gguf"].size
    downloads = [p for p in doc["progress"] if p[0] == "download"]
    assert all(total == size for _, _, total in doc["progress"])
    assert downloads[-1][1] == size and doc["progress"][-1] == ["verify", size, size]
    # The second call went on from where the cancelled one stopped.
    gets = [s for s in hub.seen[seen:] if s.method == "GET" and s.path.endswith(".gguf")]
    assert len(gets) == 2 and (gets[1].header("Range") or "").startswith("bytes=")
    assert 0 < doc["pulled"]["downloaded_bytes"] < size
    assert doc["pulled"]["header_quant"] == "Q8_0"
