"""A path as text that any UTF-8 writer takes.

Python names a file whose bytes its filesystem encoding cannot decode with lone surrogates (PEP 383): in the
C locale with the UTF-8 mode off, ``données/`` is ``donn\\udcc3\\udca9es``, which no UTF-8 file (a spec's
header, a ``model.json``) can hold: writing it failed with "surrogates not allowed". Its bytes read as
UTF-8 give the name a terminal shows (a byte that is no UTF-8 as U+FFFD).
"""

from __future__ import annotations

import os


def path_text(path: str | os.PathLike[str]) -> str:
    """``path``'s name as UTF-8 text, for writing into a file or a message."""
    return os.fsencode(path).decode("utf-8", "replace")
