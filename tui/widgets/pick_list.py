"""A SelectionList whose space toggles the option highlighted when the key arrived."""

from __future__ import annotations

from typing import TypeVar

from textual.widgets import SelectionList

T = TypeVar("T")


class PickList(SelectionList[T]):
    """SelectionList, toggling at once on space.

    Textual's SelectionList posts OptionSelected and toggles whatever is highlighted
    when that message is handled; keys that arrive together over SSH ("space down")
    then toggle the wrong option. Mouse clicks still go through the message.
    """

    def action_select(self) -> None:
        """Toggle the highlighted option now."""
        if self.highlighted is not None:
            option = self.get_option_at_index(self.highlighted)
            if not option.disabled:
                self.toggle(option)
