"""The headless commands, run as a user would run them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

SMOL, GEMMA = "smollm2-135m-instruct-q4_1", "gemma-3-270m-q4_k_m"


def workbench(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "workbench", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_compare_json_has_both_completions_stats_and_settings(
    default_model_paths: dict[str, Path],
) -> None:
    out = workbench(
        "compare", "-m", SMOL, "-m", GEMMA, "-p", "The sky is",
        "--mode", "raw", "--max-tokens", "12", "--temperature", "0", "--json",
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["mode"] == "raw" and doc["params"]["temperature"] == 0.0
    assert doc["reference"]["label"].startswith("OpenAI cl100k")
    assert [m["id"] for m in doc["models"]] == [SMOL, GEMMA]
    for m in doc["models"]:
        assert m["error"] is None
        assert m["text"]
        stats = m["stats"]
        assert 0 < stats["completion_tokens"] <= 12
        assert stats["ttft_s"] > 0 and stats["gen_tps"] > 0 and stats["prompt_tps"] > 0
        assert m["stop_reason"] in ("eos", "max_tokens")
        assert m["model"]["architecture"] in ("llama", "gemma3")


def test_compare_reads_stdin_and_prints_columns_then_stats(
    default_model_paths: dict[str, Path],
) -> None:
    out = workbench("compare", "-m", SMOL, "--max-tokens", "8", "--temperature", "0",
                    stdin="Say hello.")  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "TTFT" in out.stdout and "out t/s" in out.stdout
    assert "SmolLM2-135M-Instruct" in out.stdout  # the panel title


def test_compare_exit_status_and_message_when_one_model_fails(
    tmp_path: Path, default_model_paths: dict[str, Path]
) -> None:
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(default_model_paths["smollm2"].read_bytes()[:4096])
    out = workbench("compare", "-m", SMOL, "-m", str(broken), "-p", "Hi",
                    "--max-tokens", "4", "--json")  # fmt: skip
    assert out.returncode == 1
    assert "broken" in out.stderr and "truncated" in out.stderr
    doc = json.loads(out.stdout)
    assert doc["models"][0]["text"] and doc["models"][1]["error"]


def test_compare_refuses_an_over_long_prompt_with_the_numbers(
    default_model_paths: dict[str, Path],
) -> None:
    out = workbench("compare", "-m", SMOL, "-p", "word " * 600, "--ctx", "256", "--json")
    assert out.returncode == 1
    assert "context window is 256" in out.stderr
    assert json.loads(out.stdout)["models"][0]["stats"] is None


def test_tokens_counts_per_model_and_reference(default_model_paths: dict[str, Path]) -> None:
    out = workbench("tokens", "-m", SMOL, "-m", GEMMA, "--mode", "raw", "--json",
                    "Hello, world! 日本語")  # fmt: skip
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    counts = {m["model"]: m["prompt_tokens"] for m in doc["models"]}
    assert counts[SMOL] > 3 and counts[GEMMA] > 3
    assert doc["reference"]["tokens"] > 3
    text = workbench("tokens", "-m", SMOL, stdin="Hello")
    assert "OpenAI cl100k (reference)" in text.stdout


def test_unknown_model_id_is_a_message_not_a_traceback() -> None:
    out = workbench("compare", "-m", "no-such-model", "-p", "hi")
    assert out.returncode != 0
    assert "no model 'no-such-model'" in out.stderr
    assert "Traceback" not in out.stderr


def test_bad_setting_value_is_a_message_not_a_traceback() -> None:
    out = workbench("compare", "-m", SMOL, "-p", "hi", "--temperature", "-3")
    assert out.returncode != 0
    assert "temperature must be" in out.stderr
    assert "Traceback" not in out.stderr
