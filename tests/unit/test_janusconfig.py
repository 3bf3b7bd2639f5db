"""The Janus configuration Salon writes (salon.core.janusconfig; the real janus starting with it
is tests/turn/test_sfu_janus.py), and ``salon sfu-config``'s refusals."""

from __future__ import annotations

from pathlib import Path

import pytest

from salon.cli import main
from salon.core.janusconfig import JanusConfig, janus_configs


def _installed(tmp_path: Path) -> Path:
    """A Janus library folder with three plugins and two transports."""
    for name in ("plugins/libjanus_videoroom.so", "plugins/libjanus_sip.so",
                 "plugins/libjanus_echotest.so", "transports/libjanus_websockets.so",
                 "transports/libjanus_http.so"):  # fmt: skip
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).touch()
    return tmp_path


def test_only_videoroom_and_websockets_are_loaded(tmp_path: Path) -> None:
    config = JanusConfig.fresh(lib_folder=_installed(tmp_path))
    text = janus_configs(config)["janus.jcfg"]
    assert 'disable = "libjanus_echotest.so,libjanus_sip.so"' in text
    assert 'disable = "libjanus_http.so"' in text
    assert 'videoroom.so"' not in text and 'websockets.so"' not in text


def test_every_configuration_has_fresh_secrets_and_keeps_the_api_on_one_address() -> None:
    one, two = JanusConfig.fresh(), JanusConfig.fresh()
    secrets = {one.api_secret, one.admin_secret, one.admin_key, two.api_secret}
    assert len(secrets) == 4 and all(len(s) == 43 for s in secrets)
    files = janus_configs(one)
    assert f'api_secret = "{one.api_secret}"' in files["janus.jcfg"]
    assert f'admin_key = "{one.admin_key}"' in files["janus.plugin.videoroom.jcfg"]
    transport = files["janus.transport.websockets.jcfg"]
    assert 'ws_ip = "127.0.0.1"' in transport and 'ws_acl = "127.0.0.1"' in transport
    assert "admin_ws = false" in transport and "wss = false" in transport
    assert one.url == "ws://127.0.0.1:8188"


def test_a_public_address_and_an_api_on_every_address() -> None:
    config = JanusConfig.fresh(public_ip="203.0.113.7", ws_ip="0.0.0.0", rtp_ports=(30000, 30100))
    files = janus_configs(config)
    assert 'nat_1_1_mapping = "203.0.113.7"' in files["janus.jcfg"]
    assert 'rtp_port_range = "30000-30100"' in files["janus.jcfg"]
    assert "ws_acl" not in files["janus.transport.websockets.jcfg"]  # no address to allow


def test_strings_are_quoted_as_libconfig_reads_them() -> None:
    config = JanusConfig.fresh(server_name='a "quoted" \\ name')
    assert r'server_name = "a \"quoted\" \\ name"' in janus_configs(config)["janus.jcfg"]


@pytest.mark.parametrize("ports", ["20000", "30000-20000", "80-90", "20000-70000", "a-b"])
def test_sfu_config_refuses_a_bad_port_range_and_writes_nothing(
    tmp_path: Path, ports: str, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "janus"
    assert main(["sfu-config", str(folder), "--rtp-ports", ports]) == 2
    assert "--rtp-ports" in capsys.readouterr().err
    assert not folder.exists()


def test_no_address_list_off_loopback_and_no_name_for_an_address() -> None:
    """Janus compares client addresses by prefix: off loopback, Salon's host is not the API's
    own address, so no list is written (a firewall keeps the port, docs/SFU.md)."""
    private = janus_configs(JanusConfig.fresh(ws_ip="10.0.0.5"))
    assert "ws_acl" not in private["janus.transport.websockets.jcfg"]
    with pytest.raises(ValueError, match="not an IP address"):
        JanusConfig.fresh(ws_ip="janus.internal")


def test_text_is_written_as_utf8_not_escaped() -> None:
    config = JanusConfig.fresh(server_name="Salón")
    assert 'server_name = "Salón"' in janus_configs(config)["janus.jcfg"]
