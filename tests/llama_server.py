"""llama-cpp-python's OpenAI-compatible server, loading its model with the
workbench's weight-repacking choice for this CPU.

``python -m llama_cpp.server`` has no option for llama.cpp's
``use_extra_bufts``, and on a CPU with AMX a repacked model crashes it on
the first request. Run this file instead, with the same arguments:
``python tests/llama_server.py --model FILE ...``. The choice follows
``WORKBENCH_CPU_REPACK`` (auto, on, off; default auto) exactly as a panel's
would, and is printed first in the server's log.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from workbench.engine.running.backends.llama_load import patch_default_params
from workbench.engine.running.cpu import repack_for


def main() -> None:
    args = sys.argv[1:]
    model = Path(args[args.index("--model") + 1]) if "--model" in args else None
    choice = repack_for(os.environ.get("WORKBENCH_CPU_REPACK", "auto"), model)
    patch_default_params(choice.enabled)
    print(f"llama_server: {choice.describe()}", file=sys.stderr, flush=True)

    from llama_cpp.server.__main__ import main as serve

    serve()


if __name__ == "__main__":
    main()
