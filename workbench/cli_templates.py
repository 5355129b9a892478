"""``workbench templates``: prompt templates and few-shot prompts.

``templates`` (or ``templates list``) lists the built-in templates and the
user's own; ``templates show NAME`` prints one as TOML, the format of a user
template file; ``templates render NAME [--shots N] [--set KEY=VALUE]``
prints the prompt it makes. ``workbench compare --template NAME`` runs it.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any

from workbench.engine.sanitize import clean

_BIG = 1 << 30


def add_parsers(sub: Any) -> None:
    """Add ``templates`` to the ``workbench`` subcommand parser."""
    templates = sub.add_parser(
        "templates",
        help="list, show or render prompt templates (few-shot included)",
        description="Built-in templates are read-only; your own live as NAME.toml files in "
        "the folder `workbench templates path` prints.",
    )
    templates.add_argument(
        "action", nargs="?", choices=("list", "show", "render", "path"), default="list"
    )
    templates.add_argument("name", nargs="?", metavar="NAME", help="a template's name")
    add_template_options(templates, with_name=False)
    templates.add_argument("--json", action="store_true", help="print JSON")


def add_template_options(parser: argparse.ArgumentParser, *, with_name: bool = True) -> None:
    """--shots and --set (and --template NAME for ``compare``)."""
    if with_name:
        parser.add_argument("--template", metavar="NAME", help="build the prompt from a template")
    parser.add_argument(
        "--shots",
        metavar="N[,N...]",
        help="worked examples before the input: 3, or 0,1,3 for one panel per variant",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        dest="values",
        metavar="KEY=VALUE",
        help="a value for a template variable, such as input=... (repeatable)",
    )


def _fail(message: str) -> SystemExit:
    return SystemExit(f"workbench: {clean(message, max_len=2000)}")


def _warn(message: str) -> None:
    print(f"workbench: {clean(message, max_len=2000)}", file=sys.stderr)


def cmd_templates(args: argparse.Namespace) -> int:
    from workbench.engine.prompts import templates as t

    # A TemplateError reaches the user through ``cli.main``.
    if args.action == "path":
        print(t.templates_dir())
        return 0
    if args.action == "list":
        return _list(args, t.list_templates(_warn))
    if not args.name:
        raise _fail(f"templates {args.action} needs a template NAME")
    template = t.load_template(args.name)
    if args.action == "show":
        return _show(args, template)
    return _render(args, template)


def _describe(template: Any) -> dict[str, Any]:
    return {
        "name": template.name,
        "builtin": template.builtin,
        "description": template.description,
        "mode": template.mode,
        "variables": template.variables,
        "examples": len(template.examples),
    }


def _list(args: argparse.Namespace, found: list[Any]) -> int:
    if args.json:
        print(json.dumps([_describe(t) for t in found], indent=2, ensure_ascii=False))
        return 0
    if not found:
        print("No templates.", file=sys.stderr)
        return 0
    width = max(len(clean(t.name)) for t in found)
    for t in found:
        n = len(t.examples)
        kind = f"few-shot, {n} example{'s' if n != 1 else ''}" if n else "template"
        origin = "built-in" if t.builtin else "yours"
        variables = " ".join("{" + v + "}" for v in t.variables) or "no variables"
        line = f"{clean(t.name):<{width}}  {kind} · {t.mode or 'any mode'} · {origin} · "
        print(line + clean(variables, max_len=300))
        if t.description:
            print(" " * (width + 2) + clean(t.description, max_len=300))
    return 0


def _show(args: argparse.Namespace, template: Any) -> int:
    if args.json:
        doc = {**_describe(template), "text": template.text, "system": template.system,
               "instruction": template.instruction, "input_label": template.input_label,
               "output_label": template.output_label,
               "examples": [list(e) for e in template.examples],
               "defaults": dict(template.defaults)}  # fmt: skip
        print(json.dumps(doc, indent=2, ensure_ascii=False))
        return 0
    origin = "built-in, read-only" if template.builtin else "your template"
    print(f"# {clean(template.name)} ({origin})")
    print(clean(template.to_toml(), max_len=_BIG, keep_newlines=True), end="")
    return 0


def _render(args: argparse.Namespace, template: Any) -> int:
    from workbench.engine.prompts import templates as t

    values = t.parse_assignments(args.values)
    shots = t.parse_shots(args.shots) if args.shots else None
    if shots is None or len(shots) == 1:
        prompts = [("", template.prompt(values, shots[0] if shots else None))]
    else:
        prompts = template.variants(values, shots)
    if args.json:
        doc = [{"label": label or None, "text": pr.text, "system": pr.system, "mode": pr.mode}
               for label, pr in prompts]  # fmt: skip
        print(json.dumps(doc if len(doc) > 1 else doc[0], indent=2, ensure_ascii=False))
        return 0
    for n, (label, pr) in enumerate(prompts):
        if label:
            print(("\n" if n else "") + f"== {clean(label)} ==")
        print(clean(pr.text, max_len=_BIG, keep_newlines=True))
    return 0


HANDLERS: dict[str, Callable[[argparse.Namespace], int]] = {"templates": cmd_templates}
