"""Speed bars drawn against a scale the caller chooses, so several graphs compare honestly."""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual.widget import Widget

BARS = " ▁▂▃▄▅▆▇█"


def speed_bars(samples: Sequence[float], scale: float, width: int, style: str = "green") -> Text:
    """The newest ``width`` samples as bars; ``scale`` (bytes/s) is a full bar.

    Textual's Sparkline scales each graph to its own maximum, so a worker at 0.1 MB/s
    drew full bars beside one at 1.4 MB/s; here every bar of one job uses one scale.
    """
    values = [max(0.0, float(v)) for v in samples][-width:] if width > 0 else []
    text = Text(" " * (width - len(values)), style="dim")
    for value in values:
        if scale <= 0:
            level = 0
        else:
            level = round(min(value, scale) / scale * (len(BARS) - 1))
        # A measured non-zero speed always shows at least the lowest bar.
        text.append(BARS[max(level, 1 if value > 0 else 0)], style=style)
    return text


class SpeedGraph(Widget):
    """One line of bars drawn at render time for the width it has then (no wait for a
    Resize event); ``show(samples, scale)`` repaints only when something changed."""

    DEFAULT_CSS = "SpeedGraph { height: 1; }"

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.samples: list[float] = []
        self.scale = 0.0

    def show(self, samples: Sequence[float], scale: float) -> None:
        """New samples and scale (a new list each tick)."""
        samples = list(samples)
        if samples != self.samples or float(scale) != self.scale:
            self.samples, self.scale = samples, float(scale)
            self.refresh()

    def render(self) -> Text:
        return speed_bars(self.samples, self.scale, self.size.width)
