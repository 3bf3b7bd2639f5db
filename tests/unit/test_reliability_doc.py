"""docs/RELIABILITY.md names, for each row of the checklist, the tests that prove it. Every
test it names must exist, or the row claims a proof it does not have."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "RELIABILITY.md").read_text(encoding="utf-8")


def _references() -> list[tuple[str, str]]:
    """(path, test) for every ``path::test`` in backquotes (``a ` b`` quoting too)."""
    spans = re.findall(r"``\s?(.+?)\s?``|`([^`]+)`", DOC)
    refs = []
    for double, single in spans:
        text = double or single
        if "::" in text and "/" in text.partition("::")[0]:
            path, _, test = text.partition("::")
            refs.append((path.strip(), test.strip()))
    return refs


def test_the_document_names_tests() -> None:
    assert len(_references()) >= 150


def test_every_test_it_names_exists() -> None:
    missing = []
    for path, test in _references():
        source = ROOT / path
        if not source.is_file():
            missing.append(f"{path} (no such file)")
            continue
        text = source.read_text(encoding="utf-8")
        if path.endswith(".py"):
            # A test function, or a helper class (and its method) the text points at.
            name = test.split("[")[0].split(".")[-1]
            pattern = rf"^\s*(async def|def|class) {re.escape(name)}\b"
            if not re.search(pattern, text, flags=re.MULTILINE):
                missing.append(f"{path}::{test}")
        else:
            # vitest: "describe › test"; the test's own title is in the file as written,
            # where "…" stands for what a code span cannot quote (backquotes) or for "all".
            title = test.split(" › ")[-1]
            if not all(part.strip() in text for part in title.split("…")):
                missing.append(f"{path}::{test}")
    assert missing == []
