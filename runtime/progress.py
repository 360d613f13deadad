"""A status line on stderr for long work: rewritten in place on a terminal, sparse lines in a log."""

from __future__ import annotations

import sys


class StatusLine:
    """Show progress text; on a terminal one line is rewritten (``\\r``), otherwise a line per ``every_pct``.

    Redirected to a file, a ``\\r`` line per update becomes one huge line (an eval of 987
    utterances wrote one of 24,567 characters), so a log gets the first update, then one at
    each further ``every_pct`` up to 100 %.
    """

    def __init__(self, stream=None, every_pct: float = 10.0):
        self.stream = stream if stream is not None else sys.stderr
        isatty = getattr(self.stream, "isatty", None)
        self.tty = bool(isatty and isatty())
        self.every = float(every_pct)
        self._next = 0.0
        self._open = False

    def show(self, text: str, pct: float) -> None:
        """Report ``text`` at ``pct`` percent done."""
        if self.tty:
            self.stream.write("\r" + text)
            self._open = True
        elif pct >= self._next:
            self.stream.write(text + "\n")
            self._next = (pct // self.every + 1) * self.every
        else:
            return
        self.stream.flush()

    def close(self) -> None:
        """End the rewritten line (terminal only)."""
        if self._open:
            self.stream.write("\n")
            self.stream.flush()
            self._open = False
