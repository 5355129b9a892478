"""``workbench pull``: GGUF models from the Hugging Face Hub.

``workbench pull OWNER/NAME`` lists the repository's GGUF files with their
size and quantization; ``--quant Q4_K_M`` or ``--file PATTERN`` (or the
short form ``OWNER/NAME:Q4_K_M``) downloads one into the Hugging Face cache,
where ``workbench models`` finds it. Results go to stdout, progress and
errors to stderr. An interrupted download continues where it stopped the next
time the same pull runs.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from workbench.engine.sanitize import clean

if TYPE_CHECKING:
    from workbench.cli_progress import Bars
    from workbench.engine.models.hub import Progress, Pulled, RepoListing


def add_parsers(sub: Any) -> None:
    """Add ``pull`` to the ``workbench`` subcommand parser."""
    pull = sub.add_parser(
        "pull",
        help="list or download GGUF models from the Hugging Face Hub",
        description="Without --quant or --file, list the repository's GGUF files. "
        "Private and gated repositories use the token from HF_TOKEN or `hf auth login`.",
    )
    pull.add_argument(
        "repo", metavar="REPO_ID", help="OWNER/NAME, or OWNER/NAME:QUANT to download that quant"
    )
    which = pull.add_mutually_exclusive_group()
    which.add_argument("--quant", metavar="QUANT", help="download the file with this quant")
    which.add_argument(
        "--file", metavar="NAME_OR_PATTERN", help="download the file matching this (fnmatch)"
    )
    pull.add_argument("--revision", metavar="REV", help="branch, tag or commit (default: main)")
    pull.add_argument("--json", action="store_true", help="print JSON")


def _err(message: str) -> None:
    print(f"workbench: {clean(message, max_len=2000, keep_newlines=True)}", file=sys.stderr)


def _split_ref(ref: str) -> tuple[str, str | None]:
    """``OWNER/NAME[:QUANT]``, also as a Hub web address."""
    ref = ref.strip()
    for prefix in ("https://huggingface.co/", "http://huggingface.co/", "hf.co/", "hf://"):
        if ref.startswith(prefix):
            ref = "/".join(ref.removeprefix(prefix).split("/")[:2])
    repo, sep, quant = ref.partition(":")
    return repo, (quant or None) if sep else None


def run_pull(args: argparse.Namespace) -> int:
    from workbench.cli_progress import Bars
    from workbench.engine.models import hub

    repo_id, quant = _split_ref(args.repo)
    quant = args.quant or (None if args.file else quant)
    # A HubError reaches the user through ``cli.main``: exit status 2 when no
    # file or several match what was asked for, 1 for every other failure.
    listing = hub.list_gguf(repo_id, args.revision)
    if not (quant or args.file):
        return _print_listing(listing, args.json)
    model = hub.choose(listing, file=args.file, quant=quant)
    try:
        with Bars() as bars:
            pulled = hub.download(listing, model, progress=_reporter(bars, model.label))
    except KeyboardInterrupt:
        _err("interrupted; the next `workbench pull` of this file continues where it stopped")
        return 130
    return _print_pulled(pulled, args.json)


def _print_listing(listing: RepoListing, as_json: bool) -> int:
    from workbench.engine.models.modelinfo import format_bytes

    if as_json:
        print(json.dumps(listing.to_dict(), indent=2))
        return 0
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    console = Console()
    repo = clean(listing.repo_id, max_len=120)
    if not listing.files:
        console.print(Text(f"{repo} has no GGUF files ({listing.n_files} files in all)."))
        return 0
    table = Table(box=None, pad_edge=False, header_style="bold")
    for col in ("file", "quant", "size"):
        table.add_column(col, justify="right" if col == "size" else "left", no_wrap=True)
    for g in listing.files:
        table.add_row(Text(g.label), Text(clean(g.quant)), format_bytes(g.size))
    commit = clean(listing.commit[:12])
    console.print(Text(f"{repo} @ {commit}: {len(listing.files)} GGUF files"))
    console.print(table)
    example = next((g.quant for g in listing.files if g.quant != "?"), None)
    hint = f"--quant {example}" if example else "--file NAME"
    print(f"download one with: workbench pull {repo} {hint}", file=sys.stderr)
    return 0


def _reporter(bars: Bars, label: str) -> Callable[[Progress], None]:
    """A bar for the download and one for the check of its sha256."""

    def report(p: Progress) -> None:
        verb = "downloading" if p.phase == "download" else "verifying sha256"
        bars.update(f"{verb} {label}", p.done, p.total)

    return report


def _print_pulled(pulled: Pulled, as_json: bool) -> int:
    from workbench.engine.models.modelinfo import format_bytes

    catalog_id = _catalog_id(pulled)
    if as_json:
        print(json.dumps({**pulled.to_dict(), "catalog_id": catalog_id}, indent=2))
        return 0
    name = pulled.model.label
    if pulled.downloaded_bytes:
        print(f"downloaded {name} ({format_bytes(pulled.model.size)}, sha256 verified)")
    else:
        print(f"{name} is already in the cache")
    if pulled.info is not None:
        i = pulled.info
        print(f"  model: {i.name} · {i.architecture} · {i.params_label} · {i.quant} (header)")
    print(f"  path:  {clean(str(pulled.path), max_len=1000)}")
    use = catalog_id or clean(str(pulled.path), max_len=1000)
    print(f"  use:   workbench -m {use}")
    for note in pulled.notes:
        _err(f"note: {note}")
    return 0


def _catalog_id(pulled: Pulled) -> str | None:
    """The id ``workbench models`` gives the pulled file."""
    from workbench.engine.config import load_settings
    from workbench.engine.models.catalog import build_catalog

    target = pulled.path.resolve()
    for entry in build_catalog(load_settings()):
        if entry.path.resolve() == target:
            return entry.id
    return None


HANDLERS: dict[str, Callable[[argparse.Namespace], int]] = {"pull": run_pull}
