"""A hardened configuration for Janus (the WebRTC server, https://janus.conf.meetecho.com),
the selective forwarding unit that carries the media of big rooms (docs/SFU.md).

Janus reads libconfig files (``.jcfg``). What :func:`janus_configs` writes, and why:

- ``janus.jcfg``: an ``api_secret`` every Janus API request must carry and an
  ``admin_secret`` for the Admin API, both fresh for each configuration; only the VideoRoom
  plugin and the WebSocket transport are loaded (every other plugin, transport, event handler
  and logger is disabled, so nothing else is there to attack); the media ports come from a
  fixed range (``rtp_port_range``, for the firewall); ``hide_dependencies`` keeps library
  versions out of ``info``; ``protected_folders`` keeps VideoRoom's recordings (set only
  with the ``admin_key``) out of the system's folders.
- ``janus.transport.websockets.jcfg``: the Janus API over plain WebSocket on ``ws_ip`` (the
  loopback address by default: only Salon's server speaks to Janus, never a browser), with
  ``ws_acl`` allowing loopback clients only when it is loopback; the Admin API is off.
- ``janus.plugin.videoroom.jcfg``: no predefined rooms; rooms are created by Salon through
  the API, which needs the ``admin_key`` (``lock_rtp_forward``: so does forwarding RTP out
  of a room); room ids are strings (``string_ids``).

The media itself (ICE, DTLS-SRTP) uses the machine's addresses, or ``public_ip`` as the 1:1
NAT address of a cloud VM (``nat_1_1_mapping``).
"""

from __future__ import annotations

import ipaddress
import json
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

# Debian's locations (package ``janus``, 1.1); a source build uses /opt/janus/lib/janus/...
JANUS_LIB: Final = Path("/usr/lib/x86_64-linux-gnu/janus")
PLUGIN: Final = "libjanus_videoroom.so"
TRANSPORT: Final = "libjanus_websockets.so"
# What Janus 1.1 ships besides those, disabled by name when the folder cannot be listed.
KNOWN_PLUGINS: Final = (
    "libjanus_audiobridge.so",
    "libjanus_duktape.so",
    "libjanus_echotest.so",
    "libjanus_lua.so",
    "libjanus_nosip.so",
    "libjanus_recordplay.so",
    "libjanus_sip.so",
    "libjanus_streaming.so",
    "libjanus_textroom.so",
    "libjanus_videocall.so",
    "libjanus_voicemail.so",
)
KNOWN_TRANSPORTS: Final = (
    "libjanus_http.so",
    "libjanus_mqtt.so",
    "libjanus_nanomsg.so",
    "libjanus_pfunix.so",
    "libjanus_rabbitmq.so",
)
PROTECTED: Final = ("/bin", "/boot", "/dev", "/etc", "/lib", "/lib64", "/proc", "/sbin")
PROTECTED_TOO: Final = ("/sys", "/usr", "/var", "/root", "/home")


def fresh_secret() -> str:
    """A new secret for Janus: 32 random bytes, URL-safe base64 (43 characters)."""
    return secrets.token_urlsafe(32)


@dataclass(frozen=True)
class JanusConfig:
    """What a Janus for Salon is configured with. Ports are TCP (``ws_port``) and UDP
    (``rtp_ports``, inclusive); secrets are opaque strings (see :func:`fresh_secret`)."""

    api_secret: str
    admin_secret: str
    admin_key: str  # VideoRoom: creating rooms (and forwarding RTP) needs it
    ws_port: int = 8188
    ws_ip: str = "127.0.0.1"
    rtp_ports: tuple[int, int] = (20000, 40000)
    public_ip: str | None = None  # the 1:1 NAT address of a cloud VM, if any
    lib_folder: Path = JANUS_LIB
    configs_folder: Path = Path("/etc/janus")
    server_name: str = "salon-sfu"  # fresh() makes one up, so that Salon knows its Janus
    session_timeout_seconds: int = 60
    stun: str | None = None  # "host:port": a STUN server to learn a public address with
    disabled_plugins: tuple[str, ...] = field(default_factory=tuple)
    disabled_transports: tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        try:
            ipaddress.ip_address(self.ws_ip)
        except ValueError:
            raise ValueError(
                f"the Janus API address is not an IP address: {self.ws_ip!r}"
            ) from None

    @classmethod
    def fresh(cls, **settings: object) -> JanusConfig:
        """A configuration with new secrets; ``settings`` as the fields. What is not
        VideoRoom and WebSocket is disabled: every other library in the installed folders
        (the known ones of Janus 1.1 when they cannot be listed)."""
        lib = Path(str(settings.get("lib_folder", JANUS_LIB)))
        values: dict[str, object] = {
            "api_secret": fresh_secret(),
            "admin_secret": fresh_secret(),
            "admin_key": fresh_secret(),
            "server_name": f"salon-sfu-{secrets.token_hex(4)}",  # tells this Janus from another
            "disabled_plugins": _others(lib / "plugins", PLUGIN, KNOWN_PLUGINS),
            "disabled_transports": _others(lib / "transports", TRANSPORT, KNOWN_TRANSPORTS),
        }
        return cls(**(values | settings))  # type: ignore[arg-type]

    @property
    def url(self) -> str:
        """Where Salon's server reaches the Janus API: ``ws://ws_ip:ws_port``."""
        host = f"[{self.ws_ip}]" if ":" in self.ws_ip else self.ws_ip
        return f"ws://{host}:{self.ws_port}"


def _others(folder: Path, keep: str, known: tuple[str, ...]) -> tuple[str, ...]:
    try:
        found = sorted(p.name for p in folder.glob("*.so"))
    except OSError:
        found = []
    return tuple(name for name in (found or known) if name != keep)


def _value(value: object) -> str:
    """A libconfig scalar or list: strings in double quotes (JSON escapes are libconfig's)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    return json.dumps(str(value), ensure_ascii=False)  # libconfig reads UTF-8, not \u escapes


def _section(name: str, entries: dict[str, object]) -> str:
    body = "".join(f"\t{key} = {_value(value)}\n" for key, value in entries.items())
    return f"{name}: {{\n{body}}}\n"


def janus_configs(config: JanusConfig) -> dict[str, str]:
    """The configuration files, by name, for ``janus -F <folder>``: their text holds the
    secrets, so write them readable by their owner only."""
    lib = config.lib_folder
    general: dict[str, object] = {
        "configs_folder": str(config.configs_folder),
        "plugins_folder": str(lib / "plugins"),
        "transports_folder": str(lib / "transports"),
        "events_folder": str(lib / "events"),
        "loggers_folder": str(lib / "loggers"),
        "log_to_stdout": True,
        "debug_level": 4,
        "debug_timestamps": True,
        "debug_colors": False,
        "api_secret": config.api_secret,
        "admin_secret": config.admin_secret,
        "server_name": config.server_name,
        "session_timeout": config.session_timeout_seconds,
        "hide_dependencies": True,
        "protected_folders": [*PROTECTED, *PROTECTED_TOO],
    }
    media: dict[str, object] = {"rtp_port_range": f"{config.rtp_ports[0]}-{config.rtp_ports[1]}"}
    nat: dict[str, object] = {"nice_debug": False, "ice_ignore_list": "vmnet"}
    if config.public_ip is not None:
        nat["nat_1_1_mapping"] = config.public_ip
    if config.stun is not None:
        host, _, port = config.stun.rpartition(":")
        nat["stun_server"], nat["stun_port"] = host, int(port)
    main = "".join(
        [
            _section("general", general),
            _section("certificates", {}),
            _section("media", media),
            _section("nat", nat),
            _section("plugins", {"disable": ",".join(config.disabled_plugins)}),
            _section("transports", {"disable": ",".join(config.disabled_transports)}),
            _section("loggers", {"disable": "libjanus_jsonlog.so"}),
            _section("events", {"broadcast": False}),
        ]
    )
    transport: dict[str, object] = {
        "json": "compact",
        "ws": True,
        "ws_port": config.ws_port,
        "ws_ip": config.ws_ip,
        "wss": False,
    }
    if ipaddress.ip_address(config.ws_ip).is_loopback:
        # Janus compares client addresses by prefix ("127.0.0.1" also lets 127.0.0.10 in):
        # exact enough on loopback. On another address the client is Salon's host, not this
        # one: a firewall keeps the port to it (docs/SFU.md).
        transport["ws_acl"] = config.ws_ip
    websockets = _section("general", transport) + _section(
        "admin", {"admin_ws": False, "admin_wss": False}
    )
    videoroom = _section(
        "general",
        {"admin_key": config.admin_key, "lock_rtp_forward": True, "string_ids": True},
    )
    return {
        "janus.jcfg": main,
        "janus.transport.websockets.jcfg": websockets,
        "janus.plugin.videoroom.jcfg": videoroom,
    }
