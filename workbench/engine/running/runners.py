"""Turns what a user typed after ``-m`` into a Runner.

One place for the CLI and the app: a catalog id (or unique prefix), a path
to a .gguf file, or (for model servers) a URL.
"""

from __future__ import annotations

from workbench.engine.config import Settings
from workbench.engine.errors import WorkbenchError
from workbench.engine.models.catalog import Catalog
from workbench.engine.running.backends.base import Runner
from workbench.engine.running.backends.local import LocalRunner


class UnknownModel(WorkbenchError, KeyError):
    """No model matches; ``message`` says what is known instead."""

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else "unknown model"


def make_runner(ref: str, settings: Settings, catalog: Catalog) -> Runner:
    """A runner for ``ref``; raises UnknownModel with a message for the user.

    A URL (``http://host:port/v1[#MODEL]``) or a server named in the settings
    (``NAME`` or ``NAME#MODEL``) gives a RemoteRunner; it asks the server
    nothing until it is first used.
    """
    from workbench.engine.running.backends.remote import RemoteRunner
    from workbench.engine.running.backends.remote_spec import SpecError, spec_for

    try:
        spec = spec_for(ref, settings.servers)
    except SpecError as exc:
        raise UnknownModel(str(exc)) from None
    if spec is not None:
        return RemoteRunner(spec)
    try:
        entry = catalog.get(ref)
    except KeyError as exc:
        raise UnknownModel(exc.args[0]) from None
    return LocalRunner(entry, settings.max_default_ctx, settings.cpu_repack)
