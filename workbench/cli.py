"""The ``workbench`` command.

A bare ``workbench`` opens the terminal app; subcommands are headless:
results go to stdout, diagnostics to stderr.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from workbench.engine.config import Settings
    from workbench.engine.running.params import GenParams

from workbench import __version__, cli_doctor, cli_history, cli_hub, cli_templates
from workbench.engine.errors import WorkbenchError
from workbench.engine.running.params import ParamError
from workbench.engine.sanitize import clean

SUBCOMMANDS = (
    "models", "tokens", "compare", "config", "doctor", "history", "show", "export", "pull",
    "templates",
)  # fmt: skip


def _err(message: str) -> None:
    print(f"workbench: {clean(message, max_len=2000, keep_newlines=True)}", file=sys.stderr)


def _gen_options(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("generation settings (default: settings.toml, then built-in)")
    g.add_argument("--max-tokens", type=int, help="most new tokens per model")
    g.add_argument("--temperature", type=float, help="0 = greedy decoding")
    g.add_argument("--top-k", type=int)
    g.add_argument("--top-p", type=float)
    g.add_argument("--min-p", type=float)
    g.add_argument("--repeat-penalty", type=float)
    g.add_argument("--seed", type=int)
    g.add_argument("--stop", action="append", help="a stop string (repeatable)")
    g.add_argument("--ctx", type=int, dest="n_ctx", help="context size (0 = trained, capped)")
    g.add_argument("--system", default="", help="system prompt (chat mode)")
    g.add_argument("--mode", choices=("chat", "raw"), help="chat (default) or raw")


def _cpu_option(parser: argparse.ArgumentParser, top: bool = False) -> None:
    # On a subcommand the option must not overwrite one given before it.
    parser.add_argument(
        "--cpu-repack",
        choices=("auto", "on", "off"),
        default=None if top else argparse.SUPPRESS,
        help="llama.cpp weight repacking (default: settings.toml's cpu_repack, auto = off "
        "on CPUs with AMX)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="workbench",
        description="Compare quantized GGUF models side by side. With no command, "
        "opens the terminal app.",
    )
    parser.add_argument("--version", action="version", version=f"workbench {__version__}")
    parser.add_argument("-m", "--model", action="append", dest="models", metavar="ID",
                        help="model id or .gguf path for a panel (repeatable)")  # fmt: skip
    parser.add_argument("-p", "--prompt", default="", help="text to put in the prompt editor")
    _cpu_option(parser, top=True)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    models = sub.add_parser("models", help="list models, or install the defaults")
    models.add_argument("action", nargs="?", choices=("list", "install-defaults"), default="list")
    models.add_argument("--json", action="store_true", help="print JSON")

    tokens = sub.add_parser("tokens", help="count a prompt's tokens for each model")
    tokens.add_argument("-m", "--model", action="append", dest="models", metavar="ID")
    tokens.add_argument("text", nargs="?", help="the prompt (default: read stdin)")
    tokens.add_argument("--json", action="store_true", help="print JSON (with ids and pieces)")
    tokens.add_argument("--show", action="store_true", help="show each token, not only counts")
    tokens.add_argument("--ids", action="store_true", help="show token ids (implies --show)")
    _gen_options(tokens)

    compare = sub.add_parser("compare", help="run a prompt on several models, headless")
    compare.add_argument("-m", "--model", action="append", dest="models", metavar="ID")
    compare.add_argument("-p", "--prompt", help="the prompt (default: read stdin)")
    compare.add_argument("--schedule", choices=("parallel", "sequential"))
    compare.add_argument("--threads", type=int, help="threads in total (default: physical cores)")
    compare.add_argument("--json", action="store_true", help="one JSON document on stdout")
    compare.add_argument(
        "--logprobs", type=int, metavar="K", help="each token's probability and K alternatives"
    )
    compare.add_argument(
        "--sweep", metavar="NAME=V1,V2,...", help="a panel per value: temperature=0,0.7,1.2"
    )
    cli_templates.add_template_options(compare)
    _gen_options(compare)

    config = sub.add_parser("config", help="show or create the settings file")
    config.add_argument("action", nargs="?", choices=("path", "init", "show"), default="path")
    _cpu_option(config)
    cli_doctor.add_parser(sub, _cpu_option)
    for name in ("tokens", "compare"):
        _cpu_option(sub.choices[name])
    cli_history.add_parsers(sub)
    cli_hub.add_parsers(sub)
    cli_templates.add_parsers(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command is None:
            return _run_app(args)
        handler = {
            "models": _cmd_models,
            "tokens": _cmd_tokens,
            "compare": _cmd_compare,
            "config": _cmd_config,
            "doctor": lambda a: cli_doctor.run_doctor(a, _settings(a)),
            **cli_history.HANDLERS,
            **cli_hub.HANDLERS,
            **cli_templates.HANDLERS,
        }[args.command]
        return handler(args)
    except WorkbenchError as exc:
        # The one place an engine error reaches the user from the command line.
        _err(exc.message)
        return _exit_status(exc)
    except KeyboardInterrupt:
        _err("interrupted")
        return 130
    except BrokenPipeError:
        return 1


def _exit_status(exc: WorkbenchError) -> int:
    """2 when the command line asked for something wrong (a setting's value,
    a Hub file no name or quant picks out), as argparse exits for its own
    errors; 1 when something failed."""
    from workbench.engine.models.hub_errors import HubError

    if isinstance(exc, ParamError) or (isinstance(exc, HubError) and exc.kind == "choice"):
        return 2
    return 1


# -- helpers --------------------------------------------------------------------


def _settings(args: argparse.Namespace | None = None) -> Settings:
    """The settings file, with what the command line overrides, warnings
    printed."""
    from workbench.engine.config import load_settings

    settings = load_settings()
    for warning in settings.warnings:
        _err(warning)
    if args is not None and getattr(args, "cpu_repack", None):
        settings.cpu_repack = args.cpu_repack
    return settings


def _params(args: argparse.Namespace, settings: Settings) -> GenParams:
    from workbench.engine.running.params import from_mapping

    names = ("max_tokens", "temperature", "top_k", "top_p", "min_p", "repeat_penalty", "seed",
             "logprobs")  # fmt: skip
    values = {n: getattr(args, n) for n in (*names, "n_ctx") if getattr(args, n, None) is not None}
    if getattr(args, "stop", None):
        values["stop"] = list(args.stop)
    return from_mapping(values, base=settings.generation)


def _read_text(value: str | None, what: str) -> str:
    if value is not None:
        return value
    if sys.stdin.isatty():
        raise SystemExit(f"workbench: give the {what} as an argument or on stdin")
    return sys.stdin.read()


def _runners(refs: Sequence[str], settings: Settings) -> list[Any]:
    """Runners for model ids; UnknownModel says which id is unknown."""
    from workbench.engine.models.catalog import build_catalog
    from workbench.engine.running.runners import make_runner

    catalog = build_catalog(settings)
    return [make_runner(ref, settings, catalog) for ref in refs]


# -- commands -------------------------------------------------------------------


def _cmd_models(args: argparse.Namespace) -> int:
    if args.action == "install-defaults":
        return _install_defaults()
    from workbench.engine.models.catalog import build_catalog

    catalog = build_catalog(_settings())
    if args.json:
        data = {
            "models": [e.to_dict() for e in catalog],
            "missing_defaults": catalog.missing_defaults,
        }
        print(json.dumps(data, indent=2))
        return 0
    from rich.console import Console
    from rich.table import Table

    show_source = any(e.source != "default" for e in catalog)
    table = Table(box=None, pad_edge=False, header_style="bold")
    cols = ["id", "arch", "params", "quant", "ctx", "size", "kind"]
    for col in cols + (["source"] if show_source else []):
        right = col in ("params", "ctx", "size")
        table.add_column(col, justify="right" if right else "left", no_wrap=True)
    for e in catalog:
        if e.info:
            i = e.info
            ctx = f"{i.context_length:,}" if i.context_length else "?"
            row = [i.architecture, i.params_label, i.quant, ctx, i.size_label, i.base_or_instruct]
        else:
            row = ["[red]broken[/]", "", "", "", "", ""]
        table.add_row(e.id, *row, *([clean(e.source)] if show_source else []))
    console = Console()
    console.print(table)
    for e in catalog:
        if e.error:
            console.print(f"[red]{e.id}[/]: " + clean(e.error, max_len=300), markup=True)
    if catalog.missing_defaults:
        console.print("Default models not installed: run `make models`.", style="yellow")
    return 0


def _install_defaults() -> int:
    from workbench.cli_progress import Bars
    from workbench.engine.models.bundled import install_defaults

    with Bars() as bars:
        install_defaults(progress=bars.update, log=bars.log)
    return 0


def _cmd_config(args: argparse.Namespace) -> int:
    from workbench.engine import config, paths
    from workbench.engine.running.cpu import repack_for

    if args.action == "init":
        print(config.write_template())
        return 0
    choice = repack_for(_settings(args).cpu_repack).describe()
    if args.action == "show":
        path = paths.settings_path()
        print(path.read_text() if path.exists() else config.TEMPLATE, end="")
        print(f"\n# In effect on this machine: {choice}")
    else:
        print(paths.settings_path())
        # The path alone on stdout, for scripts; the choice is for the reader.
        print(f"in effect: {choice}", file=sys.stderr)
    return 0


def _cmd_tokens(args: argparse.Namespace) -> int:
    from workbench.engine.prompts.tokens import REFERENCE_LABEL, Budget, reference_tokens
    from workbench.engine.running.backends.base import RunnerError
    from workbench.engine.running.protocol import Mode, Prompt

    settings = _settings(args)
    params = _params(args, settings)
    text = _read_text(args.text, "text")
    mode: Mode = "raw" if args.mode == "raw" else "chat"
    prompt = Prompt(text, args.system, mode)
    show = args.show or args.ids
    refs = args.models or list(settings.default_models)
    runners = _runners(refs, settings)
    rows: list[dict[str, Any]] = []
    status = 0
    try:
        for r in runners:
            try:
                counted = r.count(prompt, params)
            except RunnerError as exc:
                rows.append({"model": r.id, "error": str(exc)})
                _err(f"{r.id}: {exc}")
                status = 1
                continue
            budget = Budget(counted.n_tokens, params.max_tokens, r.n_ctx_for(params))
            rows.append({"model": r.id, **budget.to_dict(), "note": counted.note})
            if show or args.json:
                try:
                    tokenized = r.tokenize(prompt, params)
                    rows[-1].update(ids=tokenized.ids, pieces=tokenized.pieces)
                except RunnerError as exc:
                    rows[-1].update(ids=None, pieces=None, pieces_error=str(exc))
    finally:
        for r in runners:
            r.close()
    ref_tokens = reference_tokens(text)
    reference = {"label": REFERENCE_LABEL, "tokens": len(ref_tokens)}
    if args.json:
        reference.update(ids=[i for i, _ in ref_tokens], pieces=[s for _, s in ref_tokens])
        print(json.dumps({"mode": mode, "models": rows, "reference": reference}, indent=2))
        return status
    if show:
        from workbench.cli_tokens import print_view

        print_view(rows, reference, ref_tokens, with_ids=args.ids)
        return status
    for row in rows:
        if "error" in row:
            continue
        b = Budget(row["prompt_tokens"], row["max_tokens"], row["n_ctx"])
        flag = "" if b.fits else "  TOO LONG"
        print(f"{row['model']:<32} {row['prompt_tokens']:>7,} tokens   {b.describe()}{flag}")
    print(f"{REFERENCE_LABEL:<32} {reference['tokens']:>7,} tokens")
    return status


def _cmd_compare(args: argparse.Namespace) -> int:
    from workbench.cli_compare import run_compare

    settings = _settings(args)
    params = _params(args, settings)
    # A template makes the prompt; -p then only fills its {input}.
    text = args.prompt if args.template else _read_text(args.prompt, "prompt")
    refs = args.models or list(settings.default_models)
    return run_compare(args, settings, params, text, refs, lambda r: _runners(r, settings))


def _run_app(args: argparse.Namespace) -> int:
    from workbench.engine.config import load_settings
    from workbench.tui.app import make_app

    # The app shows the settings' warnings itself, where the user is looking.
    settings = load_settings()
    if args.cpu_repack:
        settings.cpu_repack = args.cpu_repack
    app = make_app(settings=settings, models=args.models, prompt=args.prompt)
    app.run()
    return app.return_code or 0


if __name__ == "__main__":
    raise SystemExit(main())
