"""The app's keys, in one table: the bindings, the help screen and the
command palette are all built from it, so they cannot disagree."""

from __future__ import annotations

from dataclasses import dataclass

from textual.binding import Binding


@dataclass(frozen=True)
class Key:
    """One app action and the keys that run it."""

    keys: str  # Textual key names, comma separated; the first is the main one
    action: str
    label: str  # short, for the footer
    title: str  # for the command palette
    help: str  # for the help screen and the palette
    footer: bool = True
    # Priority keys work even when a text field has focus. Only keys that no
    # text field uses may be priority keys: Ctrl+W and Ctrl+Y stay word-delete
    # and redo while typing, and act on panels elsewhere.
    priority: bool = False
    palette: bool = True
    footer_keys: str | None = None  # how the footer shows the keys, when not just the first
    # Bound by the app (works over every dialog) rather than the main screen.
    scope: str = "screen"


KEYS: tuple[Key, ...] = (
    Key("ctrl+r,f5", "run", "Run", "Run all panels",
        "Run the prompt on every panel. While a run is going, this only "
        "tells you so: press Esc to cancel it first.", priority=True, footer_keys="^r/f5"),
    Key("escape", "cancel", "Cancel", "Cancel runs",
        "Cancel the focused panel's run if it is running; otherwise cancel "
        "every run. Text generated so far stays. With nothing running, Esc "
        "restores a maximized panel."),
    Key("ctrl+n", "add_panel", "Add", "Add a panel",
        "Add a panel: pick a model from the list (type to filter).", priority=True),
    Key("ctrl+w", "remove_panel", "Remove", "Remove the focused panel",
        "Remove the focused panel (or the one last focused) and free its model. "
        "In a text field Ctrl+W deletes a word instead.", footer=False),
    Key("ctrl+o", "change_model", "Model", "Change the focused panel's model",
        "Change the focused panel's model (same list as Add).", priority=True),
    Key("f2,ctrl+g", "settings", "Settings", "Generation settings",
        "Generation settings: shared values, and overrides for one panel.", priority=True),
    Key("ctrl+t", "toggle_mode", "Mode", "Toggle chat / raw completion",
        "Switch between chat (the model's chat template wraps the prompt) and raw "
        "completion (the model continues the text as it is).", footer=False, priority=True),
    Key("f11,ctrl+f", "maximize", "Max", "Maximize the focused panel",
        "Maximize the focused panel, or restore it.", footer=False, priority=True),
    Key("ctrl+y", "copy", "Copy", "Copy the focused panel's completion",
        "Copy the focused panel's completion to the clipboard (works over SSH "
        "in terminals that allow OSC 52). In a text field Ctrl+Y is redo instead.",
        footer=False),
    Key("f3", "history", "History", "History: past runs",
        "Past runs, newest first: filter by text or model; Enter brings one back "
        "(prompt, settings, panels and their text), F9 exports it.",
        footer=False, priority=True),
    Key("f8,ctrl+d", "diff", "Diff", "Diff two panels' completions",
        "Compare two panels' completions word by word ([-removed-] {+added+}); "
        "with more than two panels, choose which. In a text field Ctrl+D deletes "
        "a character instead.", footer=False),
    Key("f9,ctrl+e", "export", "Export", "Export the run as Markdown",
        "Write the run the panels show to workbench-run-<id>.md in the current "
        "folder. In a text field Ctrl+E goes to the end of the line instead.",
        footer=False),
    Key("f4", "pull", "Pull", "Pull a model from the Hugging Face Hub",
        "Pull a GGUF model from the Hugging Face Hub: list a repository's files, "
        "download one, open it in a new panel.", footer=False, priority=True),
    Key("f6", "token_view", "Tokens", "Token view: the prompt as each model reads it",
        "The prompt as each panel's model tokenizes it (chat template included in "
        "chat mode), one model above the other, with the cl100k reference; i shows "
        "token ids. In the editor F6 and F7 no longer select the line or all.",
        footer=False, priority=True),
    Key("f7", "shade", "Shade", "Shade tokens by probability",
        "Shade each panel's completion by the probability of each token: underlined "
        "below 50 %, also reversed below 10 %. Needs logprobs (1 to 10) in the settings.",
        footer=False, priority=True),
    Key("ctrl+l", "token_cursor", "Token", "Token cursor on the focused panel",
        "Put a token cursor on the focused panel's completion (a run with logprobs): "
        "Left / Right move it, and the panel shows the token's probability and the "
        "likeliest alternatives; Esc leaves.", footer=False, priority=True),
    Key("f10", "templates", "Templates", "Prompt templates and few-shot variants",
        "Prompt templates: fill in the variables, choose zero-, one- or few-shot, then "
        "put the prompt in the editor, run every variant on the focused panel's model, "
        "or one variant on every panel; save the current prompt as a template.",
        footer=False, priority=True),
    Key("f12", "sweep", "Sweep", "Sweep one setting over several values",
        "Sweep one setting (temperature, top_p, seed…) of the focused panel's model: "
        "a panel per value, replacing the panels or added to them; Ctrl+R runs them.",
        footer=False, priority=True),
    Key("f1,question_mark", "help", "Help", "Keys and help",
        "Show this help (F1 again closes it). ? works when no text field has focus.",
        priority=True, scope="app"),
    Key("ctrl+q", "quit", "Quit", "Quit",
        "Quit: cancels runs and stops every model worker.", priority=True, palette=False,
        scope="app"),
)  # fmt: skip

# Keys the app does not bind itself, listed on the help screen.
OTHER_KEYS: tuple[tuple[str, str], ...] = (
    ("Tab / Shift+Tab", "Move focus: prompt, system prompt, mode, then each panel"),
    ("Ctrl+P", "Command palette: every action by name"),
    ("Up / Down / PgUp / PgDn", "Scroll a focused panel's completion"),
    ("Space / Enter", "On the mode switch: toggle chat / raw"),
    ("Esc", "In a dialog: close it without changes"),
    ("Enter", "In the model list: choose; in settings: apply"),
)


def display(keys: str) -> str:
    """'ctrl+r,f5' -> 'Ctrl+R / F5'."""
    names = {"escape": "Esc", "question_mark": "?"}
    out = []
    for key in keys.split(","):
        if key in names:
            out.append(names[key])
            continue
        parts = key.split("+")
        out.append("+".join(p.upper() if len(p) <= 3 else p.capitalize() for p in parts))
    return " / ".join(out).replace("CTRL", "Ctrl")


# Keys that type a character: never priority, or they could not be typed.
TYPED = {"question_mark"}


SCREEN, APP = "screen", "app"


def bindings(scope: str) -> list[Binding]:
    """The bindings of the main screen (``SCREEN``) or of the app (``APP``);
    only the first key of each shows in the footer."""
    chosen = [k for k in KEYS if k.scope == scope]
    if scope == SCREEN:
        # Quit leads the footer, where Textual's apps put it: the footer lists
        # the screen's keys before the app's, so the screen binds it first too.
        chosen = [k for k in KEYS if k.action == "quit"] + chosen
    result = []
    for k in chosen:
        for index, key in enumerate(k.keys.split(",")):
            result.append(
                Binding(
                    key,
                    k.action,
                    k.label,
                    show=k.footer and index == 0,
                    priority=k.priority and key not in TYPED,
                    tooltip=k.help if index == 0 else "",
                    key_display=k.footer_keys if index == 0 else None,
                )
            )
    return result
