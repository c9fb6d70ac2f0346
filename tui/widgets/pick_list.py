"""A SelectionList whose space toggles the option highlighted when the key arrived."""

from __future__ import annotations

from typing import TypeVar

from rich.segment import Segment
from rich.style import Style
from textual.strip import Strip
from textual.widgets import OptionList, SelectionList
from textual.widgets.option_list import OptionDoesNotExist

T = TypeVar("T")


class PickList(SelectionList[T]):
    """SelectionList, toggling at once on space, each option marked `[x]` or `[ ]`.

    Textual's SelectionList posts OptionSelected and toggles whatever is highlighted
    when that message is handled; keys that arrive together over SSH ("space down")
    then toggle the wrong option. Mouse clicks still go through the message.
    Its check box is an `X` told apart by colour alone: at 256 colours an unselected
    one is nearly invisible, at 16 every box looks checked. Text marks read everywhere.
    """

    def action_select(self) -> None:
        """Toggle the highlighted option now."""
        if self.highlighted is not None:
            option = self.get_option_at_index(self.highlighted)
            if not option.disabled:
                self.toggle(option)

    def render_line(self, y: int) -> Strip:
        """`[x] Night Drive (6 songs)` / `[ ] ...` (same gutter width as the check box)."""
        line = OptionList.render_line(self, y)
        index = self.scroll_offset.y + y
        try:
            selection = self.get_option_at_index(index)
        except OptionDoesNotExist:
            return line
        selected = selection.value in self._selected
        base = next(iter(line)).style or self.rich_style
        mark_style = base + Style(bold=True, meta={"option": index})
        return Strip([Segment("[x] " if selected else "[ ] ", mark_style), *line])
