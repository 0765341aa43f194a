"""Regular files only: the journal and its caches are opened without ever waiting
on a FIFO (or device, socket) in their place. A module of its own so that a
reader that needs only this (the status line's redraw) does not load the
journal module."""

from __future__ import annotations

import errno
import os
import stat


def file_kind(mode: int) -> str:
    """What a file of ``st_mode`` ``mode`` is, for a message: "a named pipe (FIFO)"."""
    for test, name in ((stat.S_ISREG, "a regular file"), (stat.S_ISDIR, "a directory"),
                       (stat.S_ISFIFO, "a named pipe (FIFO)"), (stat.S_ISSOCK, "a socket"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device")):
        if test(mode):
            return name
    return "not a regular file"


class NotRegularFile(OSError):
    """The path is a FIFO, a device, a socket or a directory: never read or written
    (a FIFO blocks its reader and its writer, and keeps nothing)."""

    def __init__(self, path: str | os.PathLike[str], mode: int) -> None:
        super().__init__(errno.EINVAL, f"it is {file_kind(mode)}, not a regular file",
                         os.fspath(path))

    def __str__(self) -> str:  # the caller names the file: no "[Errno 22]" in a message
        return str(self.strerror)


def open_regular(path: str | os.PathLike[str], flags: int, mode: int = 0o600) -> int:
    """``os.open`` for the journal and its caches: never blocks (O_NONBLOCK, so a FIFO
    in their place cannot hang us) and returns only a regular file's descriptor.

    Raises OSError; NotRegularFile when ``path`` is something else. O_NONBLOCK
    stays set: it does nothing to a regular file.
    """
    fd = os.open(path, flags | os.O_NONBLOCK | os.O_CLOEXEC, mode)
    try:
        st_mode = os.fstat(fd).st_mode
    except BaseException:
        os.close(fd)
        raise
    if not stat.S_ISREG(st_mode):
        os.close(fd)
        raise NotRegularFile(path, st_mode)
    return fd


def read_regular(path: str | os.PathLike[str]) -> bytes:
    """The whole of a small regular file (a cache); OSError otherwise (a FIFO: at once)."""
    fd = open_regular(path, os.O_RDONLY)
    try:
        parts = []
        while chunk := os.read(fd, 1 << 20):
            parts.append(chunk)
        return b"".join(parts)
    finally:
        os.close(fd)


__all__ = ["NotRegularFile", "file_kind", "open_regular", "read_regular"]
