"""The one base class of the engine's errors for the user.

Every error the engine means a person to read derives from ``WorkbenchError``
(as well as from the built-in class callers already catch it by, such as
``ValueError`` or ``KeyError``), so a front end can report any of them in one
place: the CLI prints ``workbench: <message>`` and exits; the app shows it.
"""

from __future__ import annotations


class WorkbenchError(Exception):
    """An error whose text is the message for the user."""

    @property
    def message(self) -> str:
        """The text for the user. Not ``str(err)``: for a class that also
        derives from ``KeyError`` that would be the message in quotes."""
        return str(self.args[0]) if len(self.args) == 1 else Exception.__str__(self)


def describe(error: BaseException | None) -> str:
    """How a front end words any failure: an engine error's own message
    (written for the user), anything else by its type and text."""
    if isinstance(error, WorkbenchError):
        return error.message
    return f"{type(error).__name__}: {error}"
