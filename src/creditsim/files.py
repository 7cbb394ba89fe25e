"""Writing outputs atomically, and reading back only regular files.

A file or a directory is either complete at its place or absent. Each is written beside its target under a
temporary name and renamed into place; it gets the permissions a plain file or directory would (the umask's), not
the private ones of a temporary file. A directory of results is marked :data:`INCOMPLETE` until it has been renamed
into place, so a writer killed at any moment leaves nothing that passes for complete.

What creditsim reads back (results, checkpoints) is opened with :func:`open_regular`: a FIFO, a device such as
``/dev/zero`` or a socket put (or linked) in a file's place is refused instead of blocking or being read without
end, and a regular file is read up to the size it had when opened.
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from .errors import ResultsError

__all__ = ["INCOMPLETE", "new_directory", "open_regular", "read_regular", "write_directory", "write_file"]

#: A file in a directory being written, removed once the directory is in place: a directory holding it was not
#: completely written (its writer was killed), whatever else it holds.
INCOMPLETE = ".incomplete"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_file(target: Path, write: Callable[[Path], None], what: str) -> Path:
    """Write ``target`` by calling ``write`` on a temporary path beside it, then renaming it into place (an
    existing file is replaced). ``what`` names the output in errors.

    Raises
    ------
    ResultsError
    """
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        handle, name = tempfile.mkstemp(prefix=f".{target.stem}.", suffix=target.suffix, dir=target.parent)
        os.close(handle)
    except OSError as exc:
        raise ResultsError(f"{target}: cannot write the {what} ({exc.strerror or exc})") from None
    temporary = Path(name)
    try:
        write(temporary)
        os.chmod(temporary, 0o666 & ~_umask())
        os.replace(temporary, target)
    except (OSError, ValueError) as exc:  # ValueError: a writer refusing its content (e.g. control characters in Excel)
        raise ResultsError(f"{target}: cannot write the {what} ({getattr(exc, 'strerror', None) or exc})") from None
    finally:
        temporary.unlink(missing_ok=True)
    return target


def new_directory(directory: str | Path) -> Path:
    """``directory`` as a target for :func:`write_directory`: it must not exist; its parent is created."""
    target = Path(directory)
    if target.exists():
        raise ResultsError(f"{target}: already exists; refusing to overwrite it")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ResultsError(f"{target}: cannot create its parent directory ({exc.strerror or exc})") from None
    return target


def write_directory(target: Path, write: Callable[[Path], None], replace: bool = False, marked: bool = True) -> Path:
    """Fill a temporary directory beside ``target`` with ``write`` and rename it into place; with ``replace`` an
    existing directory at the target is replaced (the caller has checked it may be), without it only an empty one.
    With ``marked`` the directory holds :data:`INCOMPLETE` until it is in place (for a directory that is complete
    only with all of its files; one that is usable whatever it holds, such as a checkpoint, needs no mark).

    Raises
    ------
    ResultsError
    """
    try:
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    except OSError as exc:
        raise ResultsError(f"{target}: cannot write there ({exc.strerror or exc})") from None
    try:
        if marked:
            (staging / INCOMPLETE).touch()
        write(staging)
        os.chmod(staging, 0o777 & ~_umask())
        if replace and target.exists():
            retired = Path(tempfile.mkdtemp(prefix=f".{target.name}.old.", dir=target.parent))
            os.replace(target, retired / "old")
            os.replace(staging, target)
            shutil.rmtree(retired)
        else:
            os.replace(staging, target)
        if marked:
            (target / INCOMPLETE).unlink()
    except (OSError, ValueError) as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise ResultsError(f"{target}: writing failed ({getattr(exc, 'strerror', None) or exc})") from None
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target


def open_regular(path: Path, what: str) -> BinaryIO:
    """``path`` opened for reading in binary, when it is a regular file (a symbolic link is followed).

    Anything else at its place is refused before a byte is read: a FIFO (which would block until a writer came), a
    device (``/dev/zero`` never ends), a socket or a directory.

    Raises
    ------
    ResultsError
        Naming the file and ``what`` it should be.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError as exc:
        raise ResultsError(f"{path}: cannot read the {what} ({exc.strerror or exc})") from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        kind = "a directory" if stat.S_ISDIR(mode) else "a FIFO" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode) else "a device"
        raise ResultsError(f"{path}: the {what} is {kind}, not a regular file; refusing to read it")
    os.set_blocking(fd, True)
    return os.fdopen(fd, "rb")


def read_regular(path: Path, what: str) -> bytes:
    """The bytes of the regular file ``path`` (see :func:`open_regular`), at most as many as it had when opened.

    Raises
    ------
    ResultsError
    """
    with open_regular(path, what) as handle:
        size = os.fstat(handle.fileno()).st_size
        try:
            return handle.read(size)
        except OSError as exc:
            raise ResultsError(f"{path}: cannot read the {what} ({exc.strerror or exc})") from None
