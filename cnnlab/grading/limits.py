"""Caps on what the grader reads from a submission or its kernel: size, nesting, file type.

Everything a submission controls is read through these functions: the notebook it handed in, and
every file its kernel could have written (``progress.json``,
``kernel.pid``).  Before anything is parsed, the file must be a regular file reached without a
symbolic link (a FIFO would block the grader, ``/dev/zero`` would never end), its size must be
under a cap (checked before reading, and again while reading, since a kernel may still be
writing it), and JSON must nest no deeper than a cap (checked on the raw text, without recursion,
before :func:`json.loads` sees it).  A refusal raises :class:`UntrustedInputError`, whose message
says what was wrong and which option raises the cap.

Used in: ``cnnlab grade``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
from dataclasses import dataclass

import numpy as np

__all__ = ["Limits", "UntrustedInputError", "read_capped", "copy_capped", "sha256_capped",
           "json_depth",
           "load_json_capped", "parse_json_capped", "check_json_depth", "MiB"]

MiB = 2**20


@dataclass(frozen=True)
class Limits:
    """The caps of one grading batch (``grade(max_notebook_mb=..., ...)``)."""

    notebook_bytes: int = 20 * MiB  # a submitted notebook (--max-notebook-mb)
    record_bytes: int = 10 * MiB  # each file the kernel writes: progress, answers (--max-answer-mb)
    json_depth: int = 100  # nesting of any JSON the grader parses (--max-json-depth)
    parse_seconds: float = 30.0  # reading, preparing and flagging one notebook (--parse-timeout)


class UntrustedInputError(ValueError):
    """A file a submission controls was refused: not a plain file, too large, too deep, or not
    the data it should be.  The message says which and how to raise the cap."""


def _megabytes(n: int) -> str:
    return f"{n / MiB:.1f} MiB" if n < 1000 * MiB else f"{n / 2**30:.1f} GiB"


def _open_plain_file(path, what: str) -> int:
    """A read-only descriptor of ``path``, refused unless it is a regular file and not a link."""
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        if os.path.islink(path):
            raise UntrustedInputError(f"{what} is a symbolic link; only plain files are read") \
                from None
        raise UntrustedInputError(f"{what} cannot be opened: {exc.strerror}") from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        kind = "a folder" if stat.S_ISDIR(mode) else "a device, pipe or socket"
        raise UntrustedInputError(f"{what} is {kind}, not a plain file")
    return fd


def _chunks(fd: int, max_bytes: int, what: str, option: str):
    """The file's bytes in pieces, refused as soon as more than ``max_bytes`` arrive."""
    size = os.fstat(fd).st_size
    hint = f"; raise the cap with {option}" if option else ""
    if size > max_bytes:
        raise UntrustedInputError(f"{what} is {_megabytes(size)}, over the "
                                  f"{_megabytes(max_bytes)} cap{hint}")
    total = 0
    while True:
        chunk = os.read(fd, min(MiB, max_bytes + 1 - total))
        if not chunk:
            return
        total += len(chunk)
        if total > max_bytes:
            raise UntrustedInputError(f"{what} grew over the {_megabytes(max_bytes)} cap while "
                                      f"it was read{hint}")
        yield chunk


def read_capped(path, max_bytes: int, what: str = "the file", option: str = "") -> bytes:
    """The bytes of ``path``: a regular file, not a symbolic link, at most ``max_bytes`` long.

    ``what`` names the file in the error (``"the exported answer"``) and ``option`` the command
    line option that raises the cap.  Raises :class:`UntrustedInputError`.
    """
    fd = _open_plain_file(path, what)
    try:
        return b"".join(_chunks(fd, max_bytes, what, option))
    finally:
        os.close(fd)


def sha256_capped(path, max_bytes: int, what: str = "the notebook", option: str = "") -> str:
    """SHA-256 (hex) of a plain file of at most ``max_bytes``, read as :func:`read_capped` does
    but a megabyte at a time."""
    fd = _open_plain_file(path, what)
    digest = hashlib.sha256()
    try:
        for chunk in _chunks(fd, max_bytes, what, option):
            digest.update(chunk)
    finally:
        os.close(fd)
    return digest.hexdigest()


def copy_capped(source, target, max_bytes: int, what: str = "the notebook",
                option: str = "") -> str:
    """Copy a plain file of at most ``max_bytes`` to ``target``; return its SHA-256 (hex).

    The copy is what the grader works from: later changes to ``source`` cannot reach it.
    """
    fd = _open_plain_file(source, what)
    digest = hashlib.sha256()
    try:
        with open(target, "wb") as out:
            for chunk in _chunks(fd, max_bytes, what, option):
                digest.update(chunk)
                out.write(chunk)
    finally:
        os.close(fd)
    return digest.hexdigest()


# A JSON string, escapes included; an unterminated one runs to the end of the text (so a failed
# match never rescans the rest: the scan stays linear whatever the text holds).
_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"?', re.S)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_BRACKET_STEP = np.zeros(256, dtype=np.int8)  # byte -> +1 opens a level, -1 closes one
_BRACKET_STEP[list(b"[{")] = 1
_BRACKET_STEP[list(b"]}")] = -1


def json_depth(raw: bytes, stop_above: int | None = None) -> int:
    """How deeply the JSON text ``raw`` nests (``[]`` is 1, ``{"a": [1]}`` is 2), read without
    parsing it or recursing: strings are cut out, then the brackets are counted.

    With ``stop_above``, counting stops at the first megabyte of brackets that goes deeper (and
    that depth is returned), so a hostile file costs no more than it must.
    """
    skeleton = _JSON_STRING.sub(b"", raw).translate(None, _NOT_BRACKETS)
    steps = _BRACKET_STEP[np.frombuffer(skeleton, dtype=np.uint8)]
    level, deepest = 0, 0
    for start in range(0, len(steps), MiB):
        levels = level + np.cumsum(steps[start:start + MiB], dtype=np.int64)
        deepest = max(deepest, int(levels.max()))
        level = int(levels[-1])
        if stop_above is not None and deepest > stop_above:
            break
    return deepest


def load_json_capped(path, max_bytes: int, max_depth: int, what: str = "the file",
                     option: str = ""):
    """Parse the JSON file ``path`` after :func:`read_capped` and a nesting check
    (:func:`json_depth` at most ``max_depth``).  Raises :class:`UntrustedInputError`."""
    raw = read_capped(path, max_bytes, what, option)
    return parse_json_capped(raw, max_depth, what)


def check_json_depth(raw: bytes, max_depth: int, what: str = "the data") -> None:
    """Raise :class:`UntrustedInputError` if the JSON text ``raw`` nests deeper than
    ``max_depth`` (:func:`json_depth`), so that no parser ever recurses into it."""
    depth = json_depth(raw, stop_above=max_depth)
    if depth > max_depth:
        raise UntrustedInputError(f"{what} nests more than {max_depth} levels deep (at least "
                                  f"{depth}); raise the cap with --max-json-depth")


def parse_json_capped(raw: bytes, max_depth: int, what: str = "the data"):
    """Parse JSON bytes that nest at most ``max_depth`` deep, as :func:`load_json_capped`."""
    check_json_depth(raw, max_depth, what)
    try:
        return json.loads(raw.decode("utf-8"))
    except (ValueError, RecursionError, MemoryError) as exc:  # UnicodeDecodeError is a ValueError
        raise UntrustedInputError(f"{what} is not valid JSON ({type(exc).__name__}: "
                                  f"{str(exc)[:120]})") from None
