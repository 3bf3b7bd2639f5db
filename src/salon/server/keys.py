"""Server secrets kept in the data folder: the key that signs resume tokens."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from salon.core.settings import Settings

RESUME_KEY_FILE = "resume.key"


def resume_secret(settings: Settings) -> bytes:
    """The resume-token key: ``resume_secret`` when set, else the one kept in
    ``data_dir/resume.key`` (32 random bytes, hex, made on first start with mode 0600), so
    tokens stay valid across restarts of the same server."""
    if settings.resume_secret is not None:
        return settings.resume_secret.encode()
    path = Path(settings.data_dir) / RESUME_KEY_FILE
    try:
        return bytes.fromhex(path.read_text().strip())
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_bytes(32)
    # O_EXCL: two processes starting on one data folder at once agree on the first key.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return bytes.fromhex(path.read_text().strip())
    with os.fdopen(fd, "w") as handle:
        handle.write(key.hex() + "\n")
    return key
