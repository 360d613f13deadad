"""The registry of tasks: ``TASKS[name]`` is the :class:`~hearkit.export.task.Task` that exports and verifies it.

``hearkit export`` dispatches on the checkpoint's ``task``, ``hearkit verify`` on the
export's; a new task is one ``Task`` subclass and one line here. Torch-free on
import, so the CLI can list every task's options without torch.
"""

from __future__ import annotations

from hearkit.errors import ModelError
from hearkit.export.classify import ClassifyTask
from hearkit.export.ctc import CTCTask
from hearkit.export.task import CliOption, Task

TASKS: dict[str, Task] = {t.name: t for t in (ClassifyTask(), CTCTask())}


def get_task(name, where: str = "", what: str = "task") -> Task:
    """The task registered as ``name``.

    Args:
        name: the ``task`` a checkpoint or ``export.json`` records.
        where: the file or folder it came from, for the message.
        what: what lacks the task, for the message (``checkpoint`` | ``export``).

    Raises:
        ModelError: no task of that name, with the supported ones.
    """
    if name not in TASKS:
        prefix = f"{where}: " if where else ""
        raise ModelError(f"{prefix}{what} task is {name!r}, which hearkit cannot export or verify; supported: {sorted(TASKS)}")
    return TASKS[name]


def merged_options(command: str) -> list[tuple[CliOption, str]]:
    """One ``(option, help)`` per flag any task reads in ``command``, in first-declared order.

    The help joins each task's meaning and default: ``classify: max |...| (default 0.001); ctc: ...``.
    """
    by_flag: dict[str, list[tuple[Task, CliOption]]] = {}
    for task in TASKS.values():
        for o in task.options(command):
            by_flag.setdefault(o.flag, []).append((task, o))
    merged = []
    for uses in by_flag.values():
        first = uses[0][1]
        # one click option serves them all, so its type must be the same kind in each task
        assert all(type(o.type) is type(first.type) for _, o in uses), f"{first.flag}: tasks disagree on its type"
        parts = []
        for task, o in uses:
            d = task.default_of(o)
            shown = "" if d is None else f" (default: {d:g})" if isinstance(d, float) else f" (default: {d})"
            parts.append(f"{task.name}: {o.help}{shown}")
        merged.append((first, "; ".join(parts) + "."))
    return merged
