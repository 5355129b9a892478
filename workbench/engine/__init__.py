"""The engine: models, workers, generation, prompts and history.

Nothing here imports the UI toolkit; the terminal app and the headless CLI
both sit on top of this package. Its modules are grouped by job:
``models/`` (finding, describing and fetching GGUF files), ``running/``
(workers, backends and comparisons), ``prompts/`` (chat templates, prompt
templates, tokens, sweeps and panel plans) and ``history/`` (stored runs).
"""
