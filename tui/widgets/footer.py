"""A compact footer that shows only the keys that fit, and always the palette key."""

from __future__ import annotations

from collections import defaultdict

from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Footer
from textual.widgets._footer import FooterKey, FooterLabel, KeyGroup

PALETTE_WIDTH = 14  # "▏^p palette " and its padding


class FittedFooter(Footer):
    """Textual's Footer cuts keys at the right edge and docks the palette key over them
    (a stray letter showed: `^p palettes`). This one leaves out the keys that do not
    fit, in binding order (so `? Help q Quit`, listed first, stay), and recomposes when
    the width changes; every key is still on the `?` card and in the palette."""

    def __init__(self) -> None:
        super().__init__(compact=True, show_command_palette=True)
        self._width = 0

    def on_resize(self, event: events.Resize) -> None:
        if event.size.width != self._width:
            self._width = event.size.width
            self.call_after_refresh(self.recompose)

    def compose(self) -> ComposeResult:
        if not self._bindings_ready:
            return
        active = self.screen.active_bindings
        by_action: defaultdict[str, list[tuple[Binding, bool, str]]] = defaultdict(list)
        for _, binding, enabled, tooltip in active.values():
            if binding.show:
                by_action[binding.action].append((binding, enabled, tooltip))
        # Remember the width composed for: the first Resize then costs no second compose.
        self._width = self.size.width or self._width or self.app.size.width
        budget = self._width - PALETTE_WIDTH
        used = 0
        shown = 0
        groups: dict[str, list[tuple[Binding, bool, str]]] = {}
        for entries in by_action.values():
            binding = entries[0][0]
            if binding.group is not None:
                groups.setdefault(binding.group.description, []).append(entries[0])
                continue
            width = len(self.app.get_key_display(binding)) + len(binding.description) + 2
            if used + width > budget:
                continue
            used += width
            shown += 1
            yield FooterKey(
                binding.key,
                self.app.get_key_display(binding),
                binding.description,
                binding.action,
                disabled=not entries[0][1],
                tooltip=entries[0][2],
            ).data_bind(compact=Footer.compact)
        for label, entries in groups.items():
            width = sum(len(self.app.get_key_display(b)) + 2 for b, _, _ in entries) + len(label)
            if used + width > budget:
                continue
            used += width
            shown += 1
            with KeyGroup(classes="-compact"):
                for binding, enabled, tooltip in entries:
                    yield FooterKey(
                        binding.key,
                        self.app.get_key_display(binding),
                        "",
                        binding.action,
                        disabled=not enabled,
                        tooltip=tooltip or binding.description,
                        classes="-grouped",
                    ).data_bind(compact=Footer.compact)
            yield FooterLabel(label)
        self.styles.grid_size_columns = max(1, shown)
        palette = active.get(self.app.COMMAND_PALETTE_BINDING)
        if self.app.ENABLE_COMMAND_PALETTE and palette is not None:
            _, binding, enabled, tooltip = palette
            yield FooterKey(
                binding.key,
                self.app.get_key_display(binding),
                binding.description,
                binding.action,
                classes="-command-palette",
                disabled=not enabled,
                tooltip=binding.tooltip or binding.description,
            )
