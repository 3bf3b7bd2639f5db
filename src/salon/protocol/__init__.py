"""Salon's wire protocol: typed messages, codec, error codes and versions. Imports nothing else
from salon; the JSON Schema exported here generates the browser client's TypeScript types."""

from salon.protocol.codec import Outgoing, ProtocolError, decode_client, decode_server, encode
from salon.protocol.errors import CloseCode, ErrorCode
from salon.protocol.version import PROTOCOL_VERSIONS, choose_version

__all__ = [
    "PROTOCOL_VERSIONS",
    "CloseCode",
    "ErrorCode",
    "Outgoing",
    "ProtocolError",
    "choose_version",
    "decode_client",
    "decode_server",
    "encode",
]
