"""The key reference: every binding of the task center, the playlist picker and the app."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

# Keys that are not bindings of ours but belong on the card.
EXTRA_KEYS = {
    "Task center": [
        ("Enter", "Expand / collapse the highlighted job's detail"),
        ("↑ ↓ PgUp PgDn", "Move the cursor"),
    ],
    "Everywhere": [("ctrl+p", "Command palette: every action by name"), ("Tab", "Next widget")],
}
KEY_NAMES = {
    "left_square_bracket": "[",
    "right_square_bracket": "]",
    "question_mark": "?",
    "slash": "/",
    "space": "space",
    "escape": "Esc",
}


def key_text(binding: Binding) -> str:
    """`2 / l` for a binding with several keys."""
    keys = [KEY_NAMES.get(k.strip(), k.strip()) for k in binding.key.split(",")]
    keys = [k for k in keys if not k.startswith("shift+")]
    return " / ".join(dict.fromkeys(keys))


def bindings_table(title: str, bindings: Iterable[BindingType]) -> Table:
    """A two-column table of keys and what they do."""
    table = Table(
        title=title,
        title_style="bold",
        title_justify="left",
        show_header=False,
        box=None,
        padding=(0, 2, 0, 1),
        expand=True,
    )
    table.add_column("Key", style="bold", no_wrap=True, width=14)
    table.add_column("Action", ratio=1)
    for binding in bindings:
        if not isinstance(binding, Binding) or not binding.description:
            continue
        table.add_row(Text(key_text(binding)), Text(binding.tooltip or binding.description))
    for keys, action in EXTRA_KEYS.get(title, []):
        table.add_row(Text(keys), Text(action))
    return table


class HelpScreen(ModalScreen[None]):
    """A modal card of keys; Escape, `?` or `q` closes it."""

    BINDINGS = [Binding("escape,question_mark,q", "close", "Close", id="help.close")]

    def __init__(self, sections: Sequence[tuple[str, Sequence[BindingType]]]) -> None:
        super().__init__(classes="dialog-screen")
        self.sections = sections

    def compose(self) -> ComposeResult:
        with VerticalScroll(classes="dialog", id="help-dialog"):
            yield Static(Text("catalogsync keys", style="bold"), classes="dialog-title")
            for title, bindings in self.sections:
                yield Static(bindings_table(title, bindings), classes="help-section")
            yield Static(Text("Esc, ? or q closes this card", style="dim"))

    def action_close(self) -> None:
        """Back to where help was opened."""
        self.dismiss(None)
