"""File paths in the database: lossless for any name the file system allows, readable as text.

POSIX file names are bytes. Python hands names that are not valid UTF-8 over as `str` with lone
surrogates (PEP 383 "surrogateescape"), which no database driver or JSON encoder accepts. The
stored form escapes each such byte as `\\xNN` and a literal backslash as `\\\\`, so:
- it is the identity for every valid UTF-8 name without a backslash (nearly all of them);
- it works character by character, so a folder's stored form is a prefix of its files' forms
  (folder filters and "everything under this root" queries keep working);
- `to_fs(to_store(p)) == p` for every path, so the file can always be opened again.
"""

from __future__ import annotations

import os
import re
from typing import Any

from sqlalchemy import and_, false, or_
from sqlalchemy.types import NullType
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ColumnElement, SQLColumnExpression

_ESCAPED = re.compile(r"\\(\\|x[0-9a-f]{2})")


def to_store(path: str) -> str:
    """The text form of an OS path (as `os` functions return it) for the database and people."""
    if "\\" not in path and _is_utf8(path):
        return path
    out = []
    for char in path:
        code = ord(char)
        if char == "\\":
            out.append("\\\\")
        elif 0xDC80 <= code <= 0xDCFF:  # a byte that was not valid UTF-8
            out.append(f"\\x{code - 0xDC00:02x}")
        else:
            out.append(char)
    return "".join(out)


def to_fs(stored: str) -> str:
    """The OS path (surrogateescape `str`) for a stored path; inverse of `to_store`."""
    if "\\" not in stored:
        return stored

    def unescape(match: re.Match[str]) -> str:
        token = match.group(1)
        return "\\" if token == "\\" else chr(0xDC00 + int(token[1:], 16))

    return _ESCAPED.sub(unescape, stored)


def _is_utf8(path: str) -> bool:
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


# -- "path under a folder": one rule, in Python and in SQL ---------------------------------------
def is_under(path: str, folder: str) -> bool:
    """Whether `path` is `folder` or lies below it ("/a/bc" is not under "/a/b"), comparing
    exactly: case matters, as it does to the file system capdex runs on."""
    if folder == os.sep:
        return path.startswith(os.sep)
    base = folder.rstrip(os.sep)
    return path == base or path.startswith(base + os.sep)


class _Under(ColumnElement[Any]):
    """`is_under` as SQL, compiled per database (see `under`)."""

    type = NullType()  # not Boolean: SQLite would wrap it as "(...) = 1", hiding the index
    inherit_cache = False  # holds plain attributes; statements using it are compiled anew

    def __init__(self, column: SQLColumnExpression[str], folders: tuple[str, ...]) -> None:
        self.column, self.folders = column, folders


def under(column: SQLColumnExpression[str], *folders: str) -> ColumnElement[bool]:
    """Rows whose path `column` is one of `folders` (stored form) or lies below one: `is_under`
    in SQL, exact on every database.

    On SQLite a range of the path index (`folder/` ≤ path < `folder0`, '0' being the character
    after '/'): SQLite's LIKE ignores ASCII case, so `/x/Photos/%` also matched `/x/photos/...`
    (a run over /x/Photos took the other folder's files for deleted; a `folder=` filter
    returned both). PostgreSQL's LIKE is case-sensitive, and its text order need not be byte
    order, so there it is a LIKE on the escaped prefix.
    """
    return _Under(column, tuple(folders))


def _base(folder: str) -> str:
    return "" if folder == os.sep else folder.rstrip(os.sep)


@compiles(_Under)
def _under_like(element: _Under, compiler: SQLCompiler, **kw: Any) -> str:
    column = element.column
    parts = [or_(column == f, column.startswith(_base(f) + os.sep, autoescape=True))
             for f in element.folders]
    return f"({compiler.process(or_(false(), *parts), **kw)})"


@compiles(_Under, "sqlite")
def _under_range(element: _Under, compiler: SQLCompiler, **kw: Any) -> str:
    column, after_sep = element.column, chr(ord(os.sep) + 1)
    parts = [or_(column == f, and_(column >= _base(f) + os.sep, column < _base(f) + after_sep))
             for f in element.folders]
    return f"({compiler.process(or_(false(), *parts), **kw)})"
