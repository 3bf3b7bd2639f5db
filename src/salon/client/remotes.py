"""The other side's connections a pair has heard from, to drop the late signals of those a
``reset`` replaced (docs/PROTOCOL.md §4.1, "Recovering a pair").

A description names its connection by the ``sess-id`` of its ``o=`` line (RFC 8866 §5.2;
unique per connection, JSEP RFC 9429 §5.2.1), a candidate by its ``usernameFragment``
(RFC 8839 §5.4).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from salon.client.sdp import ice_ufrags, session_id
from salon.protocol.messages import SignalRelay


@dataclass(slots=True)
class RemoteConnections:
    """The ``sess-id`` and ICE ufrags seen since the last reset (``sessions``, ``ufrags``)
    and those of the connections resets replaced (``retired_*``)."""

    sessions: set[str] = field(default_factory=set)
    ufrags: set[str] = field(default_factory=set)
    retired_sessions: set[str] = field(default_factory=set)
    retired_ufrags: set[str] = field(default_factory=set)

    def stale(self, relay: SignalRelay) -> bool:
        """Whether ``relay`` comes from a remote connection that a reset replaced."""
        if relay.description is not None:
            return session_id(relay.description.sdp) in self.retired_sessions
        ufrag = relay.candidate.usernameFragment if relay.candidate is not None else None
        return ufrag is not None and ufrag in self.retired_ufrags

    def remember(self, relay: SignalRelay) -> None:
        """Note the connection ``relay`` comes from."""
        if relay.description is not None:
            session = session_id(relay.description.sdp)
            if session is not None:
                self.sessions.add(session)
            self.ufrags |= ice_ufrags(relay.description.sdp)
        elif relay.candidate is not None and relay.candidate.usernameFragment is not None:
            self.ufrags.add(relay.candidate.usernameFragment)

    def retire(self) -> None:
        """A reset: every connection heard from so far is replaced."""
        self.retired_sessions |= self.sessions
        self.retired_ufrags |= self.ufrags
        self.sessions = set()
        self.ufrags = set()
