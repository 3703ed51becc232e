"""Private files: cachepoint's state (invocation logs with prompts, account data in SQLite) is readable by
its own user only, whatever the process umask.

Folders cachepoint creates are 0700 and files 0600. The mode is passed at creation *and* set explicitly
afterwards, because the umask can only remove bits (umask 0o277 would leave a folder we cannot enter).
Folders that already exist are left alone: a log root chosen by the operator may be shared on purpose.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

DIR_MODE = 0o700
FILE_MODE = 0o600


def private_dir(path: Path) -> Path:
    """Creates `path` and any missing parents as 0700; existing folders keep their mode."""
    missing: list[Path] = []
    folder = path
    while not folder.is_dir() and folder != folder.parent:
        missing.append(folder)
        folder = folder.parent
    for folder in reversed(missing):
        try:
            os.mkdir(folder, DIR_MODE)
        except FileExistsError:
            continue  # made concurrently; its creator sets the mode (and a stray file fails at open)
        os.chmod(folder, DIR_MODE)
    return path


def open_private(path: Path, flags: int) -> int:
    """An fd for `path` (created 0600 if `flags` has O_CREAT); a file of ours left wider by an older
    version is tightened on open. The caller owns the fd."""
    fd = os.open(path, flags | os.O_CLOEXEC, FILE_MODE)
    try:
        if os.fstat(fd).st_mode & 0o777 != FILE_MODE:
            os.fchmod(fd, FILE_MODE)
    except BaseException:
        os.close(fd)
        raise
    return fd


def write_all(fd: int, data: bytes) -> None:
    """os.write may write less than asked (signals, pipes, quotas); loop until all of `data` is out."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def touch_private(path: Path) -> None:
    """Makes sure `path` exists as a 0600 file before another library (SQLite) opens it with its own mode."""
    os.close(open_private(path, os.O_RDWR | os.O_CREAT))


def exclusive_lock(path: Path) -> int | None:
    """An fd holding an exclusive lock on `path` (created 0600) for as long as it is open, or None when another
    process (or another open of it) holds the lock. The caller closes the fd to release it."""
    fd = open_private(path, os.O_WRONLY | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd
