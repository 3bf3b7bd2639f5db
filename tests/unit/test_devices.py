"""Known-device tokens (salon.core.devices): bound to one account key, unforgeable."""

from __future__ import annotations

import pytest

from salon.core.devices import KnownDevices

SECRET = b"d" * 32


def test_a_token_names_its_device_for_its_account_only() -> None:
    devices = KnownDevices(SECRET)
    token = devices.issue("IVY")
    device = devices.device(token, "IVY")
    assert device is not None and token.startswith(device + ".")
    assert devices.device(token, "JOY") is None  # earned on another account
    assert devices.issue("IVY") != token  # each sign-in's browser is a device of its own


@pytest.mark.parametrize(
    "mangle",
    [
        lambda t: t + "x",
        lambda t: "x" + t,
        lambda t: t.split(".")[0],
        lambda t: "." + t.split(".")[1],
        lambda t: t.replace(".", ""),
        lambda t: t * 3,
        lambda t: "",
        lambda t: "é." + t.split(".")[1],
    ],
)
def test_a_mangled_token_is_no_device(mangle: object) -> None:
    devices = KnownDevices(SECRET)
    token = devices.issue("IVY")
    assert devices.device(mangle(token), "IVY") is None  # type: ignore[operator]


def test_another_secret_knows_no_device_of_ours() -> None:
    token = KnownDevices(SECRET).issue("IVY")
    assert KnownDevices(b"e" * 32).device(token, "IVY") is None
    assert KnownDevices(SECRET).device(None, "IVY") is None
    with pytest.raises(ValueError, match="32 bytes"):
        KnownDevices(b"short")
