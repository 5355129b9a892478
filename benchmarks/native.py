"""Build native ``llama-bench`` from the llama.cpp that llama-cpp-python vendors.

``python -m benchmarks.native build`` downloads the llama-cpp-python source
distribution of the installed version from PyPI (through pip), unpacks its
``vendor/llama.cpp`` folder and builds only the ``llama-bench`` target, with
the same ggml CPU options llama-cpp-python's own build uses: its
CMakeLists.txt sets shared libraries and leaves every ggml option at
llama.cpp's default (``GGML_NATIVE`` on unless ``SOURCE_DATE_EPOCH`` is set,
OpenMP on, llamafile kernels on), and scikit-build-core builds Release.
``CMAKE_ARGS`` from the environment is passed on, as scikit-build-core does.

Everything lands in ``benchmarks/native/`` (git-ignored). ``status`` and
``path`` report what is there.

On a CPU with AMX a second llama-bench is built, ``build-noamx``: the same
instruction sets as this CPU but with llama.cpp's AMX kernels left out
(``GGML_NATIVE=OFF`` and each AVX/AVX-512 option named), which is what
llama.cpp does on a CPU without AMX. Figure 12 measures weight repacking on
it, since with AMX compiled in a repacked model crashes on this CPU.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import tarfile
import time
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path

NATIVE_DIR = Path(__file__).resolve().parent / "native"
SDIST_DIR = NATIVE_DIR / "sdist"
SRC_DIR = NATIVE_DIR / "src"
BUILD_DIR = NATIVE_DIR / "build"
STAMP = NATIVE_DIR / "build.json"
NOAMX_DIR = NATIVE_DIR / "build-noamx"

# /proc/cpuinfo flag -> the ggml option that compiles kernels for it.
X86_OPTIONS = {
    "sse4_2": "GGML_SSE42", "avx": "GGML_AVX", "avx2": "GGML_AVX2", "avx_vnni": "GGML_AVX_VNNI",
    "fma": "GGML_FMA", "f16c": "GGML_F16C", "bmi2": "GGML_BMI2", "avx512f": "GGML_AVX512",
    "avx512vbmi": "GGML_AVX512_VBMI", "avx512_vnni": "GGML_AVX512_VNNI",
    "avx512_bf16": "GGML_AVX512_BF16",
}  # fmt: skip

PACKAGE = "llama-cpp-python"

# The options llama-cpp-python's CMakeLists.txt forces for its own build,
# plus what this build needs: Release, no curl, no tests/examples/server.
CMAKE_OPTIONS = [
    "-DCMAKE_BUILD_TYPE=Release",
    "-DBUILD_SHARED_LIBS=ON",
    "-DLLAMA_BUILD_COMMON=ON",
    "-DLLAMA_CURL=OFF",
    "-DLLAMA_BUILD_TOOLS=ON",
    "-DLLAMA_BUILD_TESTS=OFF",
    "-DLLAMA_BUILD_EXAMPLES=OFF",
    "-DLLAMA_BUILD_SERVER=OFF",
]


def installed_version() -> str:
    return metadata.version(PACKAGE)


def bench_binary() -> Path:
    return BUILD_DIR / "bin" / "llama-bench"


def find_llama_bench() -> Path | None:
    """The built llama-bench, if it exists and matches the installed bindings."""
    binary = bench_binary()
    if not binary.is_file() or not os.access(binary, os.X_OK):
        return None
    info = build_info()
    if info is not None and info.get("version") != installed_version():
        return None
    return binary


def build_info(stamp: Path = STAMP) -> dict[str, object] | None:
    try:
        data = json.loads(stamp.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _sdist(version: str) -> Path:
    SDIST_DIR.mkdir(parents=True, exist_ok=True)
    name = f"llama_cpp_python-{version}.tar.gz"
    target = SDIST_DIR / name
    if target.is_file():
        return target
    print(f"Downloading the {PACKAGE} {version} source distribution...", flush=True)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--no-binary",
            ":all:",
            "--progress-bar",
            "off",
            "-d",
            str(SDIST_DIR),
            f"{PACKAGE}=={version}",
        ],
        check=True,
    )
    if not target.is_file():
        raise SystemExit(f"pip did not produce {target}")
    return target


def _extract_vendor(sdist: Path, version: str) -> Path:
    """Unpack only ``vendor/llama.cpp`` of the sdist; returns its folder."""
    root = f"llama_cpp_python-{version}"
    dest = SRC_DIR / root
    llama_dir = dest / "vendor" / "llama.cpp"
    if (llama_dir / "CMakeLists.txt").is_file():
        return llama_dir
    prefix = f"{root}/vendor/llama.cpp/"
    SRC_DIR.mkdir(parents=True, exist_ok=True)
    print(f"Unpacking vendor/llama.cpp from {sdist.name}...", flush=True)
    with tarfile.open(sdist) as tar:
        members = [m for m in tar.getmembers() if m.name.startswith(prefix)]
        tar.extractall(SRC_DIR, members=members, filter="data")
    if not (llama_dir / "CMakeLists.txt").is_file():
        raise SystemExit(f"{sdist.name} has no vendor/llama.cpp")
    return llama_dir


def cmake_options() -> list[str]:
    extra = shlex.split(os.environ.get("CMAKE_ARGS", ""))
    return [*CMAKE_OPTIONS, *extra]


def noamx_options() -> list[str]:
    """This CPU's instruction sets, one ggml option each, AMX left out."""
    from workbench.engine.running.cpu import this_cpu

    flags = this_cpu().flags
    return ["-DGGML_NATIVE=OFF"] + [
        f"-D{option}={'ON' if flag in flags else 'OFF'}" for flag, option in X86_OPTIONS.items()
    ]


def find_noamx_bench() -> Path | None:
    """The llama-bench built without AMX kernels, if built for this version."""
    binary = NOAMX_DIR / "bin" / "llama-bench"
    info = build_info(NOAMX_DIR / "build.json")
    if binary.is_file() and info is not None and info.get("version") == installed_version():
        return binary
    return None


def build(jobs: int = 2, build_dir: Path = BUILD_DIR, extra: Sequence[str] = ()) -> Path:
    for tool in ("cmake",):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is needed to build llama-bench")
    version = installed_version()
    binary = build_dir / "bin" / "llama-bench"
    stamp = STAMP if build_dir == BUILD_DIR else build_dir / "build.json"
    info = build_info(stamp)
    if binary.is_file() and info is not None and info.get("version") == version:
        print(f"llama-bench for {PACKAGE} {version} is already built: {binary}")
        return binary
    llama_dir = _extract_vendor(_sdist(version), version)
    options = [*cmake_options(), *extra]
    generator = ["-G", "Ninja"] if shutil.which("ninja") else []
    started = time.monotonic()
    print("Configuring: cmake " + " ".join(options), flush=True)
    subprocess.run(
        ["cmake", "-S", str(llama_dir), "-B", str(build_dir), *generator, *options],
        check=True,
    )
    print(f"Building llama-bench with -j{jobs} (several minutes on 2 cores)...", flush=True)
    subprocess.run(
        ["cmake", "--build", str(build_dir), "--target", "llama-bench", f"-j{jobs}"],
        check=True,
    )
    if not binary.is_file():
        raise SystemExit(f"the build did not produce {binary}")
    stamp.write_text(
        json.dumps(
            {
                "version": version,
                "cmake_options": options,
                "built": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "build_seconds": round(time.monotonic() - started, 1),
            },
            indent=2,
        )
    )
    print(f"Built {binary} in {time.monotonic() - started:.0f} s")
    return binary


def build_all(jobs: int) -> None:
    """The native llama-bench, and on a CPU with AMX the one without AMX kernels."""
    from workbench.engine.running.cpu import this_cpu

    build(jobs)
    if this_cpu().amx:
        print("This CPU has AMX: also building llama-bench without AMX kernels (figure 12)")
        build(jobs, NOAMX_DIR, noamx_options())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.native", description=__doc__.splitlines()[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p_build = sub.add_parser("build", help="download the sdist and build llama-bench")
    p_build.add_argument("-j", "--jobs", type=int, default=2)
    sub.add_parser("status", help="say whether llama-bench is built")
    sub.add_parser("path", help="print the llama-bench path (exit 1 if missing)")
    args = parser.parse_args(argv)
    if args.command == "build":
        build_all(args.jobs)
        return 0
    binary = find_llama_bench()
    if args.command == "path":
        if binary is None:
            return 1
        print(binary)
        return 0
    if binary is None:
        print("llama-bench is not built; run `make bench-native`")
        return 1
    print(f"{binary}\n{json.dumps(build_info(), indent=2)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
