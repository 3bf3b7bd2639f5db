"""Deployment tests: the shipped nginx template live in front of Salon, and static checks of
the container, compose and CI files."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.deploy.proxy import NGINX, Proxied, salon_behind_nginx


@pytest.fixture(scope="session")
def proxied(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proxied]:
    """Salon (``salon serve --http``) behind Debian's nginx with the shipped config."""
    if not os.access(NGINX, os.X_OK):
        reason = f"{NGINX} is missing: install Debian's nginx to run the reverse-proxy tests"
        print(reason)
        pytest.skip(reason)
    with salon_behind_nginx(Path(tmp_path_factory.mktemp("proxied"))) as running:
        yield running
