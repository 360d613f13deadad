"""Progress on stderr for long work: rewritten in place on a terminal, sparse plain lines in a log.

``StatusLine`` is one line of text; ``Progress`` counts units of work (a tqdm bar on a
terminal). Neither writes a ``\r`` into a file: a redirected 60-epoch training log used
to hold megabytes of rewritten bars.
"""

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
        self.tty = is_terminal(self.stream)
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


def is_terminal(stream) -> bool:
    """Whether ``stream`` is an interactive terminal (False for files, pipes and test captures)."""
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except ValueError:  # a closed stream
        return False


class Progress:
    """Counted work for people: a tqdm bar on a terminal, a plain line per ``every_pct`` in a log.

    tqdm is used only when ``stream`` is a terminal and tqdm is installed (it comes with
    hearkit[train]); otherwise a ``StatusLine`` prints ``desc: n/total unit (p %)`` and any
    statistics, so a redirected log gets about 100 / ``every_pct`` lines and no ``\\r``.

    Args:
        total: units of work.
        desc: what is being done (``"loading clips"``, ``"epoch 3/60"``).
        initial: units already done (a resumed epoch) (Default: 0).
        unit: name of one unit (Default: "step").
        stream: where to write (Default: sys.stderr).
        every_pct: log lines every this many percent (Default: 10).
        mininterval: seconds between bar refreshes on a terminal (Default: 0.5).
    """

    def __init__(self, total: int, desc: str, initial: int = 0, unit: str = "step", stream=None,
                 every_pct: float = 10.0, mininterval: float = 0.5):
        self.stream = stream if stream is not None else sys.stderr
        self.total, self.n, self.desc, self.unit = int(total), int(initial), desc, unit
        self._bar = None
        self._line = None
        if is_terminal(self.stream):
            try:
                from tqdm import tqdm
            except ImportError:
                pass
            else:
                self._bar = tqdm(total=self.total, initial=self.n, desc=desc, unit=unit, file=self.stream,
                                 leave=False, mininterval=mininterval)
        if self._bar is None:
            self._line = StatusLine(self.stream, every_pct)

    def update(self, n: int = 1, **stats) -> None:
        """``n`` more units done; ``stats`` (name -> value or text) are shown beside the count."""
        self.n += n
        if self._bar is not None:
            self._bar.update(n)
            if stats:
                self._bar.set_postfix({k: _fmt(v) for k, v in stats.items()}, refresh=False)
            return
        pct = 100.0 * self.n / max(self.total, 1)
        text = f"{self.desc}: {self.n}/{self.total} {self.unit}s ({pct:.0f} %)"
        if stats:
            text += ", " + ", ".join(f"{k} {_fmt(v)}" for k, v in stats.items())
        self._line.show(text, pct)

    def close(self) -> None:
        """Remove the bar (terminal) or end the status line."""
        if self._bar is not None:
            self._bar.close()
        elif self._line is not None:
            self._line.close()


def _fmt(v) -> str:
    return f"{v:.3f}" if isinstance(v, float) else str(v)
