"""Files on disk: atomic writes, output folders that are refused when occupied, and one writer per folder.

Every file hearkit writes goes through :func:`atomic_path` (or the ``write_*``
wrappers): the bytes go to a temporary file in the same folder, are flushed to
disk (fsync), and the temporary file then replaces the target in one
``os.replace``. A full disk, an exception or a kill -9 leaves the previous file
(or none), never half of one; a temporary file is removed on any exception
(only a kill can leave one, named ``.<name>.<random>.tmp<suffix>``, which
:func:`is_temp` recognises).

A command that writes a folder takes :func:`writing` for as long as it writes:
an exclusive, non-blocking ``fcntl.flock`` on ``DIR/.hearkit.lock``, so a second
hearkit process writing the same folder fails at once with one line naming the
folder and the pid holding it. :func:`check_output_dir` refuses a folder that
holds anything (but the lock file) unless ``--force``, and :func:`refuse_containing`
refuses an output folder that is, or contains, an input (docs/design.md §15).

Standard library and ``hearkit.errors`` only: the bottom layer, torch-free.

Example:
    >>> with atomic_path("out/plot.png") as tmp:   # tmp: out/.plot.png.1a2b3c4d5e6f.tmp.png
    ...     fig.savefig(tmp)
    >>> write_json("out/summary.json", {"ok": True})
    >>> with writing("runs/kws"):
    ...     check_output_dir("runs/kws", force=False)
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import uuid
from collections.abc import Iterator
from pathlib import Path

from hearkit.errors import ConfigError

LOCK_NAME = ".hearkit.lock"  # in a folder while a hearkit process writes it (left behind only by a kill)
_TEMP = re.compile(r"^\..+\.[0-9a-f]{12}\.tmp(\.[^.]*)?$")


def temp_name(path: str | os.PathLike) -> Path:
    """A fresh temporary name beside ``path`` that keeps its suffix (``np.save``, ``savefig`` read it)."""
    p = Path(path)
    return p.with_name(f".{p.name}.{uuid.uuid4().hex[:12]}.tmp{p.suffix}")


def is_temp(name: str) -> bool:
    """True for a name :func:`temp_name` makes (what a kill during a write can leave)."""
    return bool(_TEMP.match(name))


def _fsync_dir(folder: Path) -> None:
    # the rename itself is durable only once the folder's entry is on disk; not every
    # filesystem lets a folder be opened for that, and losing it costs durability only
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on a clean exit it replaces ``path`` in one step.

    Whatever writes the temporary path (``onnx.save``, ``torch.save``, ``savefig``,
    ``np.save``) may open it again; the file already exists (empty, mode 0o666 less
    the umask, as ``open`` would make it). Its bytes are fsynced before the rename.
    On any exception (a full disk, Ctrl-C) the temporary file is removed and
    ``path`` is left as it was.

    Args:
        path: the file to write; its folder is created when missing.

    Raises:
        OSError: from the writer or the rename, naming ``path`` (not the temporary file);
            ``path`` is unchanged.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_name(target)
    try:
        os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        yield tmp
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, target)
    except OSError as e:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if e.filename not in (None, os.fspath(tmp)):
            raise
        # name the file the user asked for, not the hidden temporary one (OSError() picks the
        # subclass from errno: ENOSPC stays an OSError, EACCES a PermissionError)
        raise OSError(e.errno, f"{e.strerror or e}; nothing was written (the previous file, if any, is kept)",
                      os.fspath(target)) from e
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(target.parent)


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w", encoding: str | None = "utf-8"):
    """``open`` on a temporary file that replaces ``path`` when the block ends cleanly (see :func:`atomic_path`).

    Args:
        path: the file to write.
        mode: ``"w"`` (text, Default) or ``"wb"``.
        encoding: text encoding (Default: utf-8; ignored for ``"wb"``).
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_open writes only, mode 'w' or 'wb', got {mode!r}")
    with atomic_path(path) as tmp:
        with open(tmp, mode, encoding=None if "b" in mode else encoding) as f:
            yield f
            f.flush()


def write_audio(path: str | os.PathLike, x, sample_rate: int, subtype: str | None = None) -> Path:
    """``soundfile.write`` atomically (the format from ``path``'s suffix, which the temporary file keeps).

    Args:
        path: the audio file to write (.wav, .flac, .ogg).
        x: samples, (n,) or (n, channels), float in [-1, 1] or int PCM.
        sample_rate: Hz.
        subtype: libsndfile subtype, e.g. ``"PCM_16"`` (Default: the format's default).
    """
    import soundfile as sf

    with atomic_path(path) as tmp:
        try:
            sf.write(os.fspath(tmp), x, int(sample_rate), subtype=subtype)
        except sf.LibsndfileError as e:
            # libsndfile says "System error." for a full disk: an OSError like every other failed write
            raise OSError(_write_errno(tmp), f"libsndfile could not write it ({' '.join(str(e).split())})",
                          os.fspath(tmp)) from e
    return Path(path)


def _write_errno(path: Path) -> int:
    """ENOSPC when the file system of ``path`` has no block left (what a libsndfile "System error." mostly is), else EIO."""
    try:
        st = os.statvfs(path.parent)
        return errno.ENOSPC if st.f_bavail == 0 else errno.EIO
    except OSError:
        return errno.EIO


def _state(folder: Path) -> dict[str, tuple[int, int, int]]:
    """Every file below ``folder``: relative path -> (inode, size, mtime_ns)."""
    out = {}
    if folder.is_dir():
        for p in folder.rglob("*"):
            if p.is_file() and not p.is_symlink():
                st = p.stat()
                out[os.fspath(p.relative_to(folder))] = (st.st_ino, st.st_size, st.st_mtime_ns)
    return out


@contextlib.contextmanager
def removed_on_failure(folder: str | os.PathLike, also=None) -> Iterator[Path]:
    """Remove every file the block wrote below ``folder`` (new or changed ones) when it fails.

    For commands that write many files into one folder (export's graphs, the audio of the data
    commands): a failure part-way (a full disk, a bad clip, a refused model) leaves none of their
    files behind, so nothing half-made can be loaded or mistaken for a whole result. Files that
    were there before and are unchanged stay (a user's own, or an earlier run's). An ``OSError``
    that claimed "nothing was written" for its one file is re-raised saying what was removed.

    Args:
        folder: the output folder (the lock file and empty sub-folders the block made go too).
        also: ``callable(changed names) -> names``: further files to remove when some were
            changed (export: the rest of the earlier export a ``--force`` run was replacing).
    """
    root = Path(folder)
    before = _state(root)
    dirs_before = {os.fspath(p.relative_to(root)) for p in root.rglob("*") if p.is_dir()} if root.is_dir() else set()
    try:
        yield root
    except BaseException as e:
        after = _state(root)
        gone = sorted(n for n, st in after.items() if before.get(n) != st and n != LOCK_NAME)
        changed = [n for n in gone if n in before]
        if also is not None and changed:
            gone = sorted(set(gone) | {n for n in also(changed) if n in after})
        for n in gone:
            with contextlib.suppress(OSError):
                (root / n).unlink()
        for d in sorted((p for p in root.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)) if root.is_dir() else ():
            if not any(d.iterdir()) and os.fspath(d.relative_to(root)) not in dirs_before:
                with contextlib.suppress(OSError):
                    d.rmdir()
        if gone and isinstance(e, OSError) and not isinstance(e, FileNotFoundError):
            note = f"{len(gone)} file(s) this run had written to {root} were removed; nothing of it is left"
            strerror = (e.strerror or str(e)).split("; nothing was written")[0]
            raise OSError(e.errno, f"{strerror}; {note}", e.filename) from e
        raise



def write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically; return the path."""
    with atomic_open(path, "wb") as f:
        f.write(data)
    return Path(path)


def write_text(path: str | os.PathLike, text: str, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` atomically (Default encoding utf-8); return the path."""
    with atomic_open(path, "w", encoding=encoding) as f:
        f.write(text)
    return Path(path)


def write_json(path: str | os.PathLike, data, indent: int | None = 2) -> Path:
    """Write ``data`` as JSON (Default indent 2, a final newline) atomically; return the path.

    The JSON is made before the file is touched, so data that cannot be encoded
    (a set, an object) leaves the old file as it was.
    """
    return write_text(path, json.dumps(data, indent=indent) + "\n")


# -- output folders -----------------------------------------------------------------


def entries(folder: str | os.PathLike) -> list[str]:
    """Names in ``folder`` other than the lock file, sorted; empty for a missing folder."""
    p = Path(folder)
    if not p.is_dir():
        return []
    return sorted(n for n in os.listdir(p) if n != LOCK_NAME)


def check_output_dir(folder: str | os.PathLike, force: bool, option: str = "-o", allow=()) -> bool:
    """Refuse an output folder that holds anything unless ``force``; return True when it is occupied.

    Args:
        folder: the output folder (may not exist yet).
        force: the command's ``--force``: write into an occupied folder.
        option: the option that named it, for the message (Default: ``-o``).
        allow: names whose presence does not count as occupied (a command's own
            resumable state, e.g. a run folder's files with ``--resume``).

    Raises:
        ConfigError: ``folder`` is a file, or holds files and ``force`` is not set;
            one line naming the folder and ``--force``.
    """
    p = Path(folder)
    if p.exists() and not p.is_dir():
        raise ConfigError(f"{option} {p}: exists and is not a folder; choose a folder")
    names = [n for n in entries(p) if n not in set(allow)]
    if names and not force:
        shown = ", ".join(names[:3]) + (", ..." if len(names) > 3 else "")
        raise ConfigError(f"{option} {p}: the folder is not empty ({shown}); pass --force to write into it, "
                          "or choose a new folder")
    return bool(names)


def check_output_file(path: str | os.PathLike, force: bool, option: str = "-o") -> None:
    """Refuse an output file that exists unless ``force`` (a folder there is always refused).

    Raises:
        ConfigError: one line naming the file and ``--force``.
    """
    p = Path(path)
    if p.is_dir():
        raise ConfigError(f"{option} {p}: is a folder; give a file name")
    if p.exists() and not force:
        raise ConfigError(f"{option} {p}: exists; pass --force to replace it, or choose another file")


def contains(folder, inside) -> bool:
    """True when ``folder`` is or contains ``inside``, as spelled (a symlinked input) or resolved."""
    for out, src in ((Path(os.path.abspath(folder)), Path(os.path.abspath(inside))),
                     (Path(folder).resolve(), Path(inside).resolve())):
        if out == src or out in src.parents:
            return True
    return False


def refuse_containing(folder: str | os.PathLike, inside: str | os.PathLike, what: str, option: str = "-o") -> None:
    """Refuse an output ``folder`` that is, or contains, ``inside`` (an input of the command), even with --force.

    Raises:
        ConfigError: naming both, e.g. "-o runs: the output folder must not be or contain the export folder runs/kws".
    """
    if contains(folder, inside):
        raise ConfigError(f"{option} {folder}: the output folder must not be or contain {what} {inside} "
                          "(not even with --force); choose a new folder")


# -- one writer per folder ------------------------------------------------------------

_held: dict[str, list] = {}  # resolved folder -> [fd, depth]: nested `writing` of one folder in one process


def remove_temps(folder: str | os.PathLike, depth: int = 2) -> list[str]:
    """Remove the temporary files a killed hearkit write left in ``folder`` (and ``depth - 1`` levels below).

    Only names :func:`temp_name` makes are touched; called with the folder's lock
    held, so no other hearkit process is writing them.
    """
    removed = []
    for entry in os.scandir(folder):
        if entry.is_file(follow_symlinks=False) and is_temp(entry.name):
            with contextlib.suppress(OSError):
                os.unlink(entry.path)
                removed.append(entry.name)
        elif depth > 1 and entry.is_dir(follow_symlinks=False):
            removed += [f"{entry.name}/{n}" for n in remove_temps(entry.path, depth - 1)]
    return removed


def _holder(lock: Path) -> str:
    with contextlib.suppress(OSError, ValueError):
        pid = int(lock.read_text().strip() or "0")
        if pid > 0:
            return f"pid {pid}"
    return "pid unknown"


@contextlib.contextmanager
def writing(folder: str | os.PathLike) -> Iterator[Path]:
    """Hold ``folder`` for writing: an exclusive non-blocking ``flock`` on ``folder/.hearkit.lock``.

    The folder is created when missing (and removed again at the end when the
    block leaves it empty, e.g. after a refusal). The lock file holds the pid
    and is removed on release; one a kill left behind is taken over (the lock,
    not the file, is what counts). Nested ``writing`` of one folder in one
    process is allowed (a demo running train in its own folder).

    Raises:
        ConfigError: another process holds it: "DIR is being written by another hearkit process (pid N)".
    """
    import fcntl

    p = Path(folder)
    if p.exists() and not p.is_dir():
        raise ConfigError(f"{p}: exists and is not a folder; choose a folder")
    created = not p.exists()
    p.mkdir(parents=True, exist_ok=True)
    key = os.fspath(p.resolve())
    if key in _held:
        _held[key][1] += 1
        try:
            yield p
        finally:
            _held[key][1] -= 1
        return
    lock = p / LOCK_NAME
    while True:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            os.close(fd)
            if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise ConfigError(f"{p} is being written by another hearkit process ({_holder(lock)}); "
                                  "wait for it to finish or choose another folder") from None
            raise
        # the holder before us may have removed the file after we opened it: lock the file that is there now
        try:
            same = os.path.samestat(os.fstat(fd), os.stat(lock))
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    _held[key] = [fd, 1]
    remove_temps(p)
    try:
        yield p
    finally:
        del _held[key]
        with contextlib.suppress(OSError):
            os.unlink(lock)
        os.close(fd)
        if created:
            with contextlib.suppress(OSError):
                p.rmdir()  # only when empty: a refused or failed first write leaves no folder behind


@contextlib.contextmanager
def output_folder(folder: str | os.PathLike, force: bool, option: str = "-o", allow=(), check: bool = True) -> Iterator[Path]:
    """What a command that writes a folder holds while it writes: :func:`writing`, then :func:`check_output_dir`.

    The lock comes first, so a second writer hears "being written by another hearkit
    process" rather than "not empty".

    Args:
        folder: the output folder.
        force: the command's ``--force``.
        option: the option naming it, for messages (Default: ``-o``).
        allow: names that do not make the folder occupied (see :func:`check_output_dir`).
        check: refuse an occupied folder (Default: True; False: only lock, e.g. ``--resume``).
    """
    with writing(folder) as p:
        if check:
            check_output_dir(p, force, option, allow)
        yield p


def run_folder(folder: str | os.PathLike, force: bool, resume: bool, marker: str = "last.pt"):
    """:func:`output_folder` for a training run folder (``hearkit train ... -o RUN_DIR``).

    A folder holding a run (``marker``) is left to the trainer, which refuses it without
    ``--resume``; with ``--resume`` the folder is only locked. Under torchrun only rank 0
    (``RANK``) checks and locks: the other ranks write nothing there.
    """
    if int(os.environ.get("RANK", "0") or 0) != 0:
        return contextlib.nullcontext(Path(folder))
    check = not resume and not (Path(folder) / marker).exists()
    return output_folder(folder, force, check=check)
