"""Invalid settings end a command with a line per setting, never with its value."""

from __future__ import annotations

import pytest

from salon.cli import main


def test_invalid_settings_are_named_and_never_echoed(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SALON_METRICS_TOKEN", "short-secret")
    monkeypatch.setenv("SALON_LOG_FORMAT", "xml")
    monkeypatch.setenv("SALON_LIMITS__MAX_ROOM_MEMBERS", "1")
    with pytest.raises(SystemExit) as ended:
        main(["serve", "--port", "1"])
    assert ended.value.code == 2
    err = capsys.readouterr().err
    assert "SALON_METRICS_TOKEN: String should have at least 16 characters" in err
    assert "SALON_LOG_FORMAT:" in err
    assert "SALON_LIMITS__MAX_ROOM_MEMBERS:" in err
    assert "short-secret" not in err and "Traceback" not in err
