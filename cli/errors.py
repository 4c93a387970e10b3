"""User mistakes end the ``ctr`` command with one line saying what is wrong and what to do.

A missing file or config, a malformed spec or config, a missing log column or an unknown kind raises
``FileNotFoundError``/``FileExistsError``/``ValueError`` (``FeatureError`` included) with a message
naming the problem; the command prints ``error: <message>`` to stderr and exits 2, without a
traceback. So does a path the user named that the system refuses: a folder where a file is to be
written or read (``IsADirectoryError``), a file where a folder is needed (``NotADirectoryError``,
``FileExistsError``), one the user may not write (``PermissionError``) or that lies on a read-only file
system (``OSError`` with ``EROFS``: a locked-down container's mount); the line names the path and what
is wrong with it, where ``str()`` said ``[Errno 21] Is a directory: 't'``. A file read as text that is
not UTF-8 is named by the reader that read it (``UnicodeDecodeError``, a ``ValueError``, otherwise says
which byte).

So does a command run on an install without the extra it needs (``ctr train`` on the
service's ``.[cpu]``): the line names the missing module and the extra that brings it, read from the
installed distribution's own requirements. A full disk or a spent quota (``ENOSPC``, ``EDQUOT``) is said in
one line too, naming what was being written, but exits 1: the machine's trouble, not the command line's; so is
storage that fails under a path (``EIO``, ``ESTALE``, ``ETIMEDOUT``: a failing disk, a network mount gone away).
``ctr -v ...`` keeps the traceback for debugging. Other exceptions are bugs and propagate (an import that no
extra but ``dev`` declares among them).
"""

from __future__ import annotations

import errno
import os
import re
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

import typer

from cli.help_text import HelpTyper
from common.storage_errors import FAILED_STORAGE_ERRNOS
from common.version import DISTRIBUTION

# The OSErrors a path given on the command line raises; any other (a socket's) is no mistake of the command
# line's, and keeps its traceback, but for a full disk's.
USER_ERRORS = (FileNotFoundError, FileExistsError, NotADirectoryError, IsADirectoryError, PermissionError, ValueError)
# The errnos of a plain OSError (one of no subclass above) that refuse a path as PermissionError does: the path
# named is on a read-only mount, which the user chose as they chose a folder they may not write.
REFUSED_PATH_ERRNOS = {errno.EROFS}
# A full disk, or a quota spent: the machine's trouble, not the command line's (exit 1, not 2), said in one line
# with what was being written (the error's path, or the note a writer added: common/whole_file.py), where a
# 117-line traceback ended "[Errno 28] No space left on device" naming no file.
FULL_DISK_ERRNOS = {errno.ENOSPC, errno.EDQUOT}
# Storage that failed under a path: a disk's I/O error, a network mount's stale handle or its server gone quiet.
# The machine's trouble too (exit 1), said in one line naming the path, where `ctr prepare` ended in a 90-line
# traceback. Only of a path (or a note naming what was written): a socket's ETIMEDOUT is not the storage's.
# (FAILED_STORAGE_ERRNOS, common/storage_errors.py: the errnos the service retries a version refused on too)
# Modules whose distribution has another name; any other module is taken to share its distribution's.
DISTRIBUTIONS_OF_MODULE = {
    "grpc": ("grpcio",),
    "google": ("protobuf",),
    "onnxruntime": ("onnxruntime", "onnxruntime-gpu"),
}
EXTRA_MARKER = re.compile(r"""extra\s*==\s*["']([^"']+)["']""")
REQUIREMENT_NAME = re.compile(r"[A-Za-z0-9._-]+")


def extras_providing(module: str) -> list[str]:
    """The extras of this project (``dev`` aside: the test tools) that install ``module``; [] when none
    does or the project is not installed."""
    try:
        requirements = metadata.requires(DISTRIBUTION) or []
    except metadata.PackageNotFoundError:
        return []
    wanted = {_canonical(name) for name in DISTRIBUTIONS_OF_MODULE.get(module, (module,))}
    extras = []
    for requirement in requirements:
        name, marker = REQUIREMENT_NAME.match(requirement), EXTRA_MARKER.search(requirement)
        if name and marker and _canonical(name.group()) in wanted and marker.group(1) not in ("dev", *extras):
            extras.append(marker.group(1))
    return extras


def missing_extra_message(error: ModuleNotFoundError) -> str | None:
    """What to say when ``error`` is a module an extra would have installed; None when it is not."""
    module = (error.name or "").partition(".")[0]
    extras = extras_providing(module)
    if not extras:
        return None
    named = " or ".join(f"'{extra}'" for extra in extras)
    return (
        f"this command needs {module}: the {named} extra installs it: pip install '{DISTRIBUTION}[{extras[0]}]' "
        f"(in a checkout of {DISTRIBUTION}: pip install -e '.[{extras[0]}]')"
    )


def is_user_error(error: BaseException) -> bool:
    """Whether ``error`` is a mistake of the command line's, said in one line (the module docstring): one of
    ``USER_ERRORS``, or a path refused by a read-only file system; a refusal naming no path (a signal's or
    a socket's ``EPERM``) is not."""
    if isinstance(error, PermissionError):
        return error.filename is not None
    if isinstance(error, USER_ERRORS):
        return True
    return isinstance(error, OSError) and error.errno in REFUSED_PATH_ERRNOS and error.filename is not None


def is_full_disk(error: BaseException) -> bool:
    return isinstance(error, OSError) and error.errno in FULL_DISK_ERRNOS


def full_disk_line(error: OSError) -> str:
    """A full disk's error on one line: what was being written, and what to do."""
    return f"{_what_failed(error)}: free space there (or write elsewhere) and run the command again"


def is_failed_storage(error: BaseException) -> bool:
    """Whether ``error`` is storage failing under a path it names (``FAILED_STORAGE_ERRNOS``)."""
    if not isinstance(error, OSError) or error.errno not in FAILED_STORAGE_ERRNOS:
        return False
    return error.filename is not None or bool(getattr(error, "__notes__", []))


def failed_storage_line(error: OSError) -> str:
    """Storage's failure on one line: the path it failed under, the error, and what to do."""
    return (
        f"{_what_failed(error)}: the storage there failed (a disk's error, a network mount gone stale or not "
        "answering): check it (dmesg, the mount) and run the command again"
    )


def _what_failed(error: OSError) -> str:
    """The error and the file it was about: what the writer said it was writing (the name the user knows, not
    a hidden temporary one), else the path the error names, else the error alone."""
    notes = getattr(error, "__notes__", [])
    if notes:
        return f"{error.strerror or os.strerror(error.errno or 0)} {notes[-1]}"
    if error.filename is not None:
        return _path_refused(error)
    return error.strerror or os.strerror(error.errno or 0)


def one_line(error: Exception) -> str:
    """The error's message on one line. A pydantic ``ValidationError`` (``ctr serve``'s settings) says each
    field and what is wrong with it, never the value given (an admin token is a secret), where its first
    line would say only how many errors there were."""
    pydantic = sys.modules.get("pydantic")  # imported by whatever raised it; the command line need not import it
    if pydantic is not None and isinstance(error, pydantic.ValidationError):
        if error.title == "Settings":  # the service's: each field is read from CTR_<FIELD>
            from service.settings import invalid_settings

            return invalid_settings(error)
        problems = []
        for problem in error.errors(include_url=False, include_input=False, include_context=False):
            field = ".".join(str(part) for part in problem["loc"])
            text = problem["msg"].removeprefix("Value error, ")
            problems.append(f"{field}: {text}" if field else text)
        return f"invalid {error.title}: " + "; ".join(problems)
    if isinstance(error, OSError) and error.errno is not None and error.filename is not None:
        return _path_refused(error)
    if isinstance(error, UnicodeDecodeError):
        return _not_text(error)
    return str(error).splitlines()[0] if str(error) else type(error).__name__


def _path_refused(error: OSError) -> str:
    """What the system refused about the path it names, in words (the destination of a rename or copy
    where there is one: the path the user named, not a temporary file beside it)."""
    path = Path(error.filename2 if error.filename2 is not None else error.filename)
    if isinstance(error, IsADirectoryError):
        return f"{path} is a directory, where a file is expected: name a file"
    if isinstance(error, NotADirectoryError | FileExistsError):
        files = [part for part in (path, *path.parents) if part.is_file()]
        if files:
            return f"{files[-1]} is a file, where a directory is needed for {path}"
    return f"{path}: {error.strerror or type(error).__name__}"


def _not_text(error: UnicodeDecodeError) -> str:
    """Text that is not UTF-8, where no reader said which file held it (the readers of a user's files name
    them: common/toml_file.py, cli/docs_check.py)."""
    return f"the text is not UTF-8 ({error.reason} at byte {error.start})"


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


class UserErrorTyper(HelpTyper):
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().__call__(*args, **kwargs)
        except (OSError, ValueError, ModuleNotFoundError) as error:
            code = 2
            if isinstance(error, ModuleNotFoundError):
                message = missing_extra_message(error)
                if message is None:
                    raise
            elif is_full_disk(error):
                message, code = full_disk_line(error), 1
            elif is_failed_storage(error):
                message, code = failed_storage_line(error), 1
            elif is_user_error(error):
                message = one_line(error)
            else:
                raise  # a bug, or the machine's trouble (a socket's): the traceback says where
            if "-v" in sys.argv[1:2] or "--verbose" in sys.argv[1:2]:
                raise
            typer.echo(said_as_logged(f"error: {message}"), err=True)
            raise SystemExit(code) from None


def said_as_logged(line: str) -> str:
    """``line`` as ``ctr serve`` logs (one JSON object under ``CTR_LOG_FORMAT=json``, as a log shipper reads
    the service's every other line: the one that said why it did not start was the only plain one); as it
    is for any other command, or another format."""
    command = next((arg for arg in sys.argv[1:] if not arg.startswith("-")), None)
    if command != "serve" or os.environ.get("CTR_LOG_FORMAT") != "json":
        return line
    import logging

    from service.log_format import JsonFormatter

    return JsonFormatter().format(logging.LogRecord("ctr", logging.ERROR, __file__, 0, line, None, None))
