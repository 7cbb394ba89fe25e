"""Reading inputs with a bound, and writing outputs atomically: a file or a directory is either complete at its place
or absent.

Every file creditsim reads is opened with :func:`open_regular` (or read with :func:`read_regular`): a FIFO, a
device such as ``/dev/zero``, a socket or a directory put (or linked) in a file's place is refused before anything
is read from it, so nothing blocks or reads without end; an input (a scenario, observations, a loan tape) must be
at most the size its kind may have, and what creditsim reads back (results, checkpoints, checked as they are read)
is read up to the size it had when opened.

A file or a directory is either complete at its place or absent. Each is written beside its target under a
temporary name and renamed into place; it gets the permissions a plain file or directory would (the umask's), not
the private ones of a temporary file. A directory of results is marked :data:`INCOMPLETE` until it has been renamed
into place, so a writer killed at any moment leaves nothing that passes for complete.

Before a command spends time on a run, :func:`check_destination` tries each of its outputs the way the writer will (the name, the directory, a
temporary beside the target), so an output that cannot be written is refused first.
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from .errors import CreditsimError, ResultsError

__all__ = ["INCOMPLETE", "check_destination", "new_directory", "open_regular", "read_regular", "write_directory", "write_file"]

#: A file in a directory being written, removed once the directory is in place: a directory holding it was not
#: completely written (its writer was killed), whatever else it holds.
INCOMPLETE = ".incomplete"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


#: The most characters of a target's name its temporary's name repeats, so that any name the file system takes for the
#: target leaves room for the temporary's (``.NAME.`` and eight random characters).
_NAME_IN_TEMPORARY = 40


def check_destination(target: str | os.PathLike[str], what: str, directory: bool = False) -> Path:
    """Refuse, before any work, an output that :func:`write_file` (or, with ``directory``, :func:`write_directory`)
    could not write: an empty path, a name the file system does not take (too long, say), a place whose parent
    cannot be created, or a directory where a temporary file (directory) beside the target cannot be made — tried by
    making one and removing it, so read-only places, full quotas and permissions are found as the writer would.
    The target's parent directories are created.

    Raises
    ------
    ResultsError
        Naming the target and the reason.
    """
    if not str(target):
        raise ResultsError(f"the {what}'s path is empty; give a file or directory name")
    path = Path(target)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.lstat(path)  # a name too long, or a file where a directory is needed on the way, fails here
        except FileNotFoundError:
            pass
        made = _temporary(path, directory)
        (os.rmdir if directory else os.unlink)(made)
    except OSError as exc:
        raise ResultsError(f"{path}: cannot write the {what} there ({exc.strerror or exc})") from None
    return path


def _temporary(target: Path, directory: bool) -> Path:
    """A new temporary file (or directory) beside ``target``, named after it: ``.NAME.XXXXXXXX``."""
    if directory:
        return Path(tempfile.mkdtemp(prefix=f".{target.name[:_NAME_IN_TEMPORARY]}.", dir=target.parent))
    handle, name = tempfile.mkstemp(prefix=f".{target.stem[:_NAME_IN_TEMPORARY]}.", suffix=target.suffix, dir=target.parent)
    os.close(handle)
    return Path(name)


def write_file(target: Path, write: Callable[[Path], None], what: str) -> Path:
    """Write ``target`` by calling ``write`` on a temporary path beside it, then renaming it into place (an
    existing file is replaced). ``what`` names the output in errors.

    Raises
    ------
    ResultsError
    """
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = _temporary(target, directory=False)
    except OSError as exc:
        raise ResultsError(f"{target}: cannot write the {what} ({exc.strerror or exc})") from None
    try:
        write(temporary)
        os.chmod(temporary, 0o666 & ~_umask())
        os.replace(temporary, target)
    except (OSError, ValueError) as exc:  # ValueError: a writer refusing its content (e.g. control characters in Excel)
        raise ResultsError(f"{target}: cannot write the {what} ({getattr(exc, 'strerror', None) or exc})") from None
    finally:
        temporary.unlink(missing_ok=True)
    return target


def new_directory(directory: str | Path, what: str = "tables") -> Path:
    """``directory`` as a target for :func:`write_directory`: it must not exist, and must be writable where it is
    (:func:`check_destination`; its parent is created)."""
    target = check_destination(directory, what, directory=True)
    if target.exists():
        raise ResultsError(f"{target}: already exists; refusing to overwrite it")
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
        staging = _temporary(target, directory=True)
    except OSError as exc:
        raise ResultsError(f"{target}: cannot write there ({exc.strerror or exc})") from None
    try:
        if marked:
            (staging / INCOMPLETE).touch()
        write(staging)
        os.chmod(staging, 0o777 & ~_umask())
        if replace and target.exists():
            retired = Path(tempfile.mkdtemp(prefix=f".{target.name[:_NAME_IN_TEMPORARY]}.old.", dir=target.parent))
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


def open_regular(path: str | os.PathLike[str], what: str, *, most: int | None = None,
                 error: Callable[[str], CreditsimError] | None = None) -> BinaryIO:
    """``path`` opened for reading in binary, when it is a regular file (a symbolic link is followed) of at most
    ``most`` bytes.

    Anything else at its place is refused before a byte is read: a FIFO (which would block until a writer came), a
    device (``/dev/zero`` never ends), a socket or a directory.

    Parameters
    ----------
    path : str or path
    what : str
        What the file is, for the errors ("scenario file", "results manifest").
    most : int, optional
        The most bytes the file may hold; no bound when None (a file creditsim checks as it reads it).
    error : callable, optional
        Makes the error to raise from the rule the file breaks (``"the scenario file is larger than 1 MiB, …"``);
        by default a :class:`ResultsError` naming ``path``.

    Raises
    ------
    CreditsimError
        From ``error``: for a file that cannot be opened, that is not a regular file or that is larger than ``most``.
    """
    fail = error or _naming(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)  # a FIFO with no writer: at once
    except (OSError, ValueError) as exc:  # ValueError: a NUL byte in the name
        raise fail(f"cannot read the file: {getattr(exc, 'strerror', None) or exc}") from None
    status = os.fstat(fd)
    mode = status.st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        kind = "a directory" if stat.S_ISDIR(mode) else "a FIFO" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode) else "a device"
        raise fail(f"the {what} is {kind}, not a regular file; refusing to read it")
    if most is not None and status.st_size > most:
        os.close(fd)
        raise fail(f"the {what} is larger than {most / 1024**2:g} MiB, the most it may be")
    os.set_blocking(fd, True)
    return os.fdopen(fd, "rb")


def read_regular(path: str | os.PathLike[str], what: str, *, most: int | None = None,
                 error: Callable[[str], CreditsimError] | None = None) -> bytes:
    """The bytes of the regular file ``path``, checked as :func:`open_regular` does and read up to the size it had
    when opened (so a file that grows while it is read adds nothing).

    Raises
    ------
    CreditsimError
        See :func:`open_regular`.
    """
    with open_regular(path, what, most=most, error=error) as handle:
        size = os.fstat(handle.fileno()).st_size
        try:
            return handle.read(size)
        except OSError as exc:
            raise (error or _naming(path))(f"cannot read the file: {exc.strerror or exc}") from None


def _naming(path: str | os.PathLike[str]) -> Callable[[str], CreditsimError]:
    """The error of a file creditsim reads back: a :class:`ResultsError` naming it."""
    return lambda rule: ResultsError(f"{path}: {rule}")
