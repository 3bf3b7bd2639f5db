"""Salon's Python SDK: join rooms and direct calls from Python with aiortc.

Needs the ``client`` extra (``pip install 'salon[client]'``, which brings aiortc and PyAV).
Speaks the protocol of docs/PROTOCOL.md with the server's own typed messages
(:mod:`salon.protocol.messages`)::

    async with Client("https://localhost:8443", "Bot", ssl=ssl_context(insecure=True)) as bot:
        await bot.join("standup")
        await bot.chat("hello")
"""

from salon.client.client import SFU_VERSIONS, VERSIONS, Client, Remote
from salon.client.errors import CallFailed, ClientError, ConnectionLost, ServerError
from salon.client.links import MeetingLink, parse_link, ssl_context
from salon.client.peer import Peer
from salon.client.sfu import SfuRemote

__all__ = [
    "SFU_VERSIONS",
    "VERSIONS",
    "CallFailed",
    "Client",
    "ClientError",
    "ConnectionLost",
    "MeetingLink",
    "Peer",
    "Remote",
    "ServerError",
    "SfuRemote",
    "parse_link",
    "ssl_context",
]
