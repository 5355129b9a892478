"""Running on the CPU it finds: llama.cpp's weight repacking, chosen from
the CPU's features, seen to reach llama.cpp, and retried off after a crash
on the first decode (issue: every local run crashed on CPUs with AMX)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from workbench.engine.config import load_settings
from workbench.engine.models.catalog import build_catalog
from workbench.engine.running import cpu
from workbench.engine.running import protocol as p
from workbench.engine.running.backends.local import LocalRunner
from workbench.engine.running.params import GenParams
from workbench.engine.running.worker import FAULT_ENV

SMOL = "smollm2-135m-instruct-q4_1"
GEMMA = "gemma-3-270m-q4_k_m"
GREEDY = GenParams(max_tokens=8, temperature=0.0)
PROMPT = p.Prompt("The sea is", mode="raw")

SAPPHIRE_RAPIDS = """\
processor\t: 0
vendor_id\t: GenuineIntel
model name\t: Intel(R) Xeon(R) Platinum 8488C
flags\t\t: fpu sse4_2 avx f16c fma avx2 bmi2 avx512f avx512bw avx512_vnni avx512_bf16 \
amx_bf16 avx512_fp16 amx_tile amx_int8
"""
EPYC = """\
processor\t: 0
model name\t: AMD EPYC 7B13 64-Core Processor
flags\t\t: fpu sse4_2 avx f16c fma avx2 bmi2
"""
GRAVITON = """\
processor\t: 0
BogoMIPS\t: 243.75
Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp asimddp i8mm bf16
CPU implementer\t: 0x41
"""


# -- deciding ------------------------------------------------------------------------


def test_auto_turns_repacking_off_where_the_cpu_has_amx() -> None:
    xeon = cpu.parse_cpuinfo(SAPPHIRE_RAPIDS)
    assert xeon.name == "Intel(R) Xeon(R) Platinum 8488C"
    assert xeon.amx == ("amx_tile", "amx_int8", "amx_bf16")
    choice = cpu.decide_repack("auto", xeon)
    assert not choice.enabled
    assert "AMX" in choice.reason and "amx_int8" in choice.reason
    assert choice.describe().startswith("weight repacking off (auto): ")


@pytest.mark.parametrize("text", [EPYC, GRAVITON])
def test_auto_keeps_repacking_on_elsewhere(text: str) -> None:
    other = cpu.parse_cpuinfo(text)
    assert other.amx == ()
    assert cpu.decide_repack("auto", other).enabled


def test_arm_features_are_read_too() -> None:
    arm = cpu.parse_cpuinfo(GRAVITON)
    assert {"asimd", "i8mm"} <= set(arm.kernel_flags)


def test_an_explicit_setting_wins_over_the_cpu() -> None:
    xeon, epyc = cpu.parse_cpuinfo(SAPPHIRE_RAPIDS), cpu.parse_cpuinfo(EPYC)
    assert cpu.decide_repack("on", xeon).enabled
    assert not cpu.decide_repack("off", epyc).enabled


def test_a_remembered_crash_turns_auto_off_for_that_file_only(tmp_path: Path) -> None:
    epyc = cpu.parse_cpuinfo(EPYC)
    crashed, other = tmp_path / "a.gguf", tmp_path / "b.gguf"
    crashed.write_bytes(b"x")
    other.write_bytes(b"y")
    note = cpu.remember_crash(crashed, "killed by signal SIGSEGV (11)", epyc)
    assert "SIGSEGV" in note
    assert not cpu.repack_for("auto", crashed, epyc).enabled
    assert cpu.repack_for("auto", crashed, epyc).reason == note
    assert cpu.repack_for("auto", other, epyc).enabled
    assert cpu.repack_for("on", crashed, epyc).enabled
    # Another kind of CPU has not crashed on it.
    assert cpu.repack_for("auto", crashed, cpu.parse_cpuinfo(GRAVITON)).enabled


def test_the_cpu_key_changes_with_the_kernel_flags() -> None:
    base = cpu.parse_cpuinfo(EPYC)
    same = cpu.parse_cpuinfo(EPYC.replace("fpu ", "fpu vme "))  # not a kernel flag
    wider = cpu.parse_cpuinfo(EPYC.replace("bmi2", "bmi2 avx512f"))
    assert base.key() == same.key() != wider.key()


def test_the_setting_is_checked(workbench_home: Path) -> None:
    path = workbench_home / "settings.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text('cpu_repack = "off"\n')
    assert load_settings(path).cpu_repack == "off"
    path.write_text('cpu_repack = "fast"\n')
    settings = load_settings(path)
    assert settings.cpu_repack == "auto"
    assert any("cpu_repack" in w for w in settings.warnings)


def test_the_advice_names_the_cpu_and_the_setting() -> None:
    xeon = cpu.parse_cpuinfo(SAPPHIRE_RAPIDS)
    on = cpu.decide_repack("on", xeon)
    advice = cpu.crash_advice(xeon, on, "killed by signal SIGSEGV (11)")
    assert "Intel(R) Xeon(R) Platinum 8488C" in advice and "amx_int8" in advice
    assert 'cpu_repack = "off"' in advice and "--cpu-repack off" in advice
    illegal = cpu.crash_advice(xeon, on, "killed by signal SIGILL (4)")
    assert "built for another CPU" in illegal


# -- the setting reaches llama.cpp ------------------------------------------------------

_BUFFERS = """
import json, sys
from workbench.engine.running.backends.llama_load import load_weights
print(json.dumps(load_weights(sys.argv[1], sys.argv[2] == "on")))
"""


def _buffers(path: Path, repack: str) -> list[str]:
    # Load only, no decode (a repacked model may crash on this CPU's first
    # decode), in a process of its own, as the app never loads llama.cpp.
    out = subprocess.run(
        [sys.executable, "-c", _BUFFERS, str(path), repack],
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    return list(json.loads(out.stdout.strip().splitlines()[-1]))


@pytest.mark.slow
def test_llama_cpp_repacks_only_when_asked(default_model_paths: dict[str, Path]) -> None:
    # Gemma's Q4_K weights have repacked layouts for AVX2, AVX-512, AMX and ARM.
    gemma = default_model_paths["gemma"]
    off = _buffers(gemma, "off")
    on = _buffers(gemma, "on")
    assert off == ["CPU_Mapped"], off
    extra = set(on) - {"CPU_Mapped", "CPU"}
    assert extra & {"CPU_REPACK", "AMX"}, on


@pytest.fixture
def runners(default_model_paths: dict[str, Path]) -> Iterator[list[LocalRunner]]:
    made: list[LocalRunner] = []
    yield made
    for r in made:
        r.close()


def _runner(made: list[LocalRunner], setting: str, model: str = SMOL) -> LocalRunner:
    runner = LocalRunner(build_catalog().get(model), 2048, setting)
    made.append(runner)
    return runner


@pytest.mark.slow
def test_a_worker_loads_with_the_effective_choice(runners: list[LocalRunner]) -> None:
    off = _runner(runners, "off", GEMMA)
    events = list(off.generate(PROMPT, GREEDY, 1))
    loaded = next(e for e in events if isinstance(e, p.Loaded))
    assert loaded.repack is False and loaded.buffers == ["CPU_Mapped"]
    assert "CPU :" in loaded.system_info
    assert isinstance(events[-1], p.Done) and events[-1].stats.completion_tokens > 0

    auto = _runner(runners, "auto", GEMMA)
    expected = cpu.repack_for("auto", auto.entry.path).enabled
    events = list(auto.generate(PROMPT, GREEDY, 1))
    loaded = next(e for e in events if isinstance(e, p.Loaded))
    assert loaded.repack is expected
    assert ("CPU_Mapped" in loaded.buffers) and (len(loaded.buffers) > 1) is expected
    assert isinstance(events[-1], p.Done), events[-1]


# -- a crash on the first decode ----------------------------------------------------------


@pytest.mark.slow
def test_a_crash_on_the_first_decode_is_retried_without_repacking(
    runners: list[LocalRunner], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(FAULT_ENV, "crash-on-repacked-decode")
    runner = _runner(runners, "on")
    events = list(runner.generate(PROMPT, GREEDY, 1))
    loaded = next(e for e in events if isinstance(e, p.Loaded))
    assert loaded.repack is False and loaded.buffers == ["CPU_Mapped"]
    assert "llama.cpp crashed on this CPU" in loaded.note
    assert cpu.this_cpu().name in loaded.note
    assert "--cpu-repack off" in loaded.note and "Retried with repacking off" in loaded.note
    done = events[-1]
    assert isinstance(done, p.Done) and done.stats.completion_tokens > 0
    # Remembered for this file on this machine: auto now starts with it off.
    remembered = cpu.remembered_crash(runner.entry.path)
    assert remembered and "SIGSEGV" in remembered
    later = _runner(runners, "auto")
    assert not later.repack_choice().enabled
    loaded = next(e for e in later.generate(PROMPT, GREEDY, 1) if isinstance(e, p.Loaded))
    assert loaded.repack is False and not loaded.note
    # Gemma, another file, has not crashed here.
    assert cpu.remembered_crash(_runner(runners, "auto", GEMMA).entry.path) is None


@pytest.mark.slow
def test_counting_first_retries_too(
    runners: list[LocalRunner], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The app counts the prompt before any run: that load meets the crash.
    monkeypatch.setenv(FAULT_ENV, "crash-on-repacked-decode")
    runner = _runner(runners, "on")
    assert runner.count(PROMPT, GREEDY).n_tokens > 0
    assert cpu.remembered_crash(runner.entry.path)


@pytest.mark.slow
def test_a_crash_with_repacking_off_too_is_an_error_and_not_remembered(
    runners: list[LocalRunner], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(FAULT_ENV, "crash-on-decode")
    runner = _runner(runners, "on")
    events = list(runner.generate(PROMPT, GREEDY, 1))
    (error,) = events
    assert isinstance(error, p.Error) and error.kind == "load"
    assert "SIGSEGV (11) with weight repacking on" in error.message
    assert "with it off: the file may be broken" in error.message
    assert cpu.this_cpu().name in error.message
    assert cpu.remembered_crash(runner.entry.path) is None


@pytest.mark.slow
def test_a_crash_later_in_a_run_is_not_retried(
    runners: list[LocalRunner], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Repacking off: on a CPU with AMX, on would crash (and be retried) at load.
    monkeypatch.setenv(FAULT_ENV, "crash-after-tokens=3")
    runner = _runner(runners, "off")
    events = list(runner.generate(PROMPT, GREEDY, 1))
    tokens = [e for e in events if isinstance(e, p.Token)]
    assert len(tokens) == 3
    last = events[-1]
    assert isinstance(last, p.Error) and last.kind == "crash"
    assert "SIGSEGV" in last.message
    assert sum(isinstance(e, p.Loaded) for e in events) == 1
    assert "retried" not in last.message.lower()
    assert cpu.remembered_crash(runner.entry.path) is None
    # The run's error stays the run's: the next run starts a fresh worker.
    monkeypatch.delenv(FAULT_ENV)
    again = list(runner.generate(PROMPT, GREEDY, 1))
    assert isinstance(again[-1], p.Done), again[-1]


# -- doctor and config -----------------------------------------------------------------


def _workbench(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "workbench", *args],
        capture_output=True, text=True, timeout=300, env={**os.environ, **(env or {})},
    )  # fmt: skip


@pytest.mark.slow
def test_doctor_loads_and_decodes_both_defaults(default_model_paths: dict[str, Path]) -> None:
    out = _workbench("doctor", "--json")
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    here = cpu.this_cpu()
    assert report["cpu"]["name"] == here.name
    assert report["cpu"]["amx"] == list(here.amx)
    assert "CPU :" in report["system_info"]
    assert report["cpu_repack"]["setting"] == "auto"
    assert report["cpu_repack"]["on"] is cpu.repack_for("auto").enabled
    assert [m["model"] for m in report["models"]] == [SMOL, GEMMA]
    for model in report["models"]:
        assert model["ok"] and model["tokens"] > 0 and model["text"].strip()
        assert model["repacked"] is report["cpu_repack"]["on"]


@pytest.mark.slow
def test_doctor_reports_a_crash_and_the_retry(default_model_paths: dict[str, Path]) -> None:
    out = _workbench(
        "doctor", "-m", SMOL, "--cpu-repack", "on",
        env={FAULT_ENV: "crash-on-repacked-decode"},
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert 'repacking    on (cpu_repack = "on")' in out.stdout
    assert "llama.cpp crashed on this CPU" in out.stdout
    assert "Retried with repacking off" in out.stdout
    assert f"ok           {SMOL}" in out.stdout


def test_config_shows_the_choice_in_effect() -> None:
    out = _workbench("config", "--cpu-repack", "off")
    assert out.returncode == 0
    assert "in effect: weight repacking off (off)" in out.stderr
    shown = _workbench("config", "show")
    assert "cpu_repack" in shown.stdout
    assert f"# In effect on this machine: {cpu.repack_for('auto').describe()}" in shown.stdout


def test_doctor_says_when_llama_cpp_was_compiled_for_another_cpu(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from workbench.cli_doctor import _print

    report = {
        "cpu": {"name": "Some CPU", "cores": 2, "amx": [], "flags": ["avx2"], "key": "aaaa"},
        "llama_cpp_python": "0.3.36",
        "built_for": "bbbb",
        "system_info": "",
        "cpu_repack": {"setting": "auto", "on": True, "why": "no AMX"},
        "models": [],
    }
    _print(report)
    assert "compiled for ANOTHER CPU (key bbbb; this one is aaaa): run make setup" in (
        capsys.readouterr().out
    )
    _print({**report, "built_for": "aaaa"})
    assert "compiled for this CPU (key aaaa)" in capsys.readouterr().out
