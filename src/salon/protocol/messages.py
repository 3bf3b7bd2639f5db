"""The messages of protocols v1, v2 and v3: a tagged union on ``type`` in each direction.

Every frame is one JSON object. Client messages may carry ``ref``, a value of the client's
choosing that the server echoes in an ``error`` caused by that message. The server refuses a
client message with a field it does not know (``codec.decode_client``: ``bad_message``), so a
client field is added only with a new version; a server message may gain fields within a
version (clients ignore those they do not know). A field is never repurposed.

Field names follow the W3C WebRTC spec where they carry its objects (``sdpMid``,
``sdpMLineIndex``, ``usernameFragment``). Value limits (name length, chat length, room size)
belong to the server's settings and are announced in ``welcome.limits``; this module only
fixes the shape.

Version 2 is version 1 plus recording (docs/PROTOCOL.md §3.9): ``recording`` in a member's
media, the host action ``record``, the server message ``recordings``, the room events
``recording_started``/``recording_stopped`` and the error ``recording_unavailable``. The
``recording`` field of a server message is left out while it is false, so a v1 client sees
exactly what it saw before until somebody records.

Version 3 adds rooms whose media goes through the SFU (docs/PROTOCOL.md §3.10): ``joined.sfu``,
``room_media``, and the exchange of descriptions between a member and the SFU
(``sfu_publish``/``sfu_answer`` for what it sends, ``sfu_offer``/``sfu_subscribe`` for what it
receives, ``sfu_candidate`` for its trickled candidates).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from salon.protocol.errors import ErrorCode

Ref = Annotated[str, Field(max_length=64)] | Annotated[int, Field(ge=-(2**53), le=2**53)]
MemberId = Annotated[str, Field(max_length=64)]
CallId = Annotated[str, Field(max_length=64)]
ClientChatId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
ResumeToken = Annotated[str, Field(max_length=1024)]
HostKey = Annotated[str, Field(max_length=128)]
InviteToken = Annotated[str, Field(max_length=512)]


class _Message(BaseModel):
    # strict: "1" is not an int and 1 is not a bool. Extra fields are ignored here, which
    # keeps server messages open to new fields for Python clients (``decode_server``); the
    # server reads client messages with extra="forbid" (``decode_client``).
    model_config = ConfigDict(
        strict=True, extra="ignore", frozen=True, json_schema_serialization_defaults_required=True
    )


class _ClientMessage(_Message):
    ref: Ref | None = None


class _Aliased(_Message):
    """A message with a field named by a Python keyword on the wire (``from``): built in
    Python by its field name (``sender=``), read and written by its alias."""

    model_config = ConfigDict(
        strict=True,
        extra="ignore",
        frozen=True,
        json_schema_serialization_defaults_required=True,
        populate_by_name=True,
    )


# ---------------------------------------------------------------------------- shared shapes


class SessionDescription(_Message):
    """An ``RTCSessionDescriptionInit`` (W3C webrtc-pc section 4.7)."""

    type: Literal["offer", "answer", "pranswer", "rollback"]
    sdp: str = ""


class IceCandidate(_Message):
    """An ``RTCIceCandidateInit`` (W3C webrtc-pc 4.8.1); an empty candidate ends gathering."""

    candidate: str
    sdpMid: str | None = None
    sdpMLineIndex: Annotated[int, Field(ge=0, le=65535)] | None = None
    usernameFragment: str | None = None


class DescriptionRejected(_Message):
    """A description the receiver could not apply (``setRemoteDescription`` threw)."""

    type: Literal["offer", "answer", "pranswer", "rollback"]
    message: Annotated[str, Field(max_length=256)] = ""


class PeerReset(_Message):
    """The sender closed its ``RTCPeerConnection`` toward the receiver and opened a new one."""

    reason: Literal["ice_failed", "description_failed", "rejected"]


def _false(value: object) -> bool:
    return value is False


def _none(value: object) -> bool:
    return value is None


# v2: "this member records the room"; left out of server messages while false. Its own
# schema title keeps the name ``Recording`` for the recording itself in generated types.
RecordingFlag = Annotated[bool, Field(exclude_if=_false, title="Records")]

# v2, set by the server only: "this member is the recorder the server runs for a host's
# ``record``" (docs/PROTOCOL.md §3.9). Left out while false.
RecorderFlag = Annotated[bool, Field(exclude_if=_false, title="ServerRecorder")]


class MediaState(_Message):
    """What a member sends: whether their microphone, camera and screen share are on, and
    (v2) whether it records the room (every client then shows that the room is recorded)."""

    mic: bool = False
    camera: bool = False
    screen: bool = False
    recording: RecordingFlag = False


class IceServer(_Message):
    """An ``RTCIceServer`` (W3C webrtc-pc section 4.2.4)."""

    urls: list[str]
    username: str | None = None
    credential: str | None = None


class Limits(_Message):
    """The limits in force, announced in ``welcome`` so a client can check before sending."""

    max_frame_bytes: int
    max_name_chars: int
    max_chat_chars: int
    max_room_members: int
    rate_per_second: float
    rate_burst: int
    ping_after_seconds: float
    dead_after_seconds: float
    ring_seconds: float
    resume_grace_seconds: float


class MemberInfo(_Message):
    """A member of a room as others see it."""

    id: MemberId
    name: str
    polite: bool  # whether the receiver is the polite side toward this member
    media: MediaState
    # Signed in to an account: ``name`` is that account's display name, which no guest may
    # take (docs/PROTOCOL.md §1.4); a guest of the same name shows without the mark.
    signed_in: bool = False
    # v2: the server's own recorder (its ``media.recording`` is then always true). Only the
    # server sets it: a member whose media merely says ``recording`` is not one.
    recorder: RecorderFlag = False


class ChatEntry(_Aliased):
    """One chat message as stored and delivered; ``seq`` grows by one per room."""

    room: str
    id: str
    seq: int
    ts: int  # milliseconds since the Unix epoch, server clock
    sender: MemberId = Field(alias="from")
    name: str
    text: str
    client_id: str | None = None  # the sender's own id for it (``chat.id``), null when none


# ------------------------------------------------------------------------- client -> server


class Hello(_ClientMessage):
    type: Literal["hello"]
    versions: Annotated[list[int], Field(min_length=1, max_length=16)]
    name: str
    resume: ResumeToken | None = None  # a resume token: take back that member's place
    # Be reachable by this name for direct calls (``call``) and listed in ``presence``; such a
    # name is unique on the server. False: the name is only shown in rooms (not unique).
    reachable: bool = False


class Join(_ClientMessage):
    type: Literal["join"]
    room: str
    password: str | None = None
    media: MediaState | None = None  # the joiner's mic/camera/screen; default all off
    host_key: HostKey | None = None  # the key ``POST /api/v1/rooms`` gave the room's creator
    # An invitation minted by the server API (the ``#invite=`` part of its link).
    invite: InviteToken | None = None


class Leave(_ClientMessage):
    type: Literal["leave"]


class _SignalPayload(_Message):
    """Exactly one of: a description, a candidate, a rejected description, a reset."""

    description: SessionDescription | None = None
    candidate: IceCandidate | None = None
    rejected: DescriptionRejected | None = None
    reset: PeerReset | None = None

    @model_validator(mode="after")
    def _exactly_one_payload(self) -> _SignalPayload:
        # Written out, not sum() over a generator: this runs for every relayed signal twice.
        carried = (
            (self.description is not None)
            + (self.candidate is not None)
            + (self.rejected is not None)
            + (self.reset is not None)
        )
        if carried != 1:
            raise ValueError(
                "a signal carries exactly one of description, candidate, rejected or reset"
            )
        return self


class Signal(_SignalPayload):
    """Relay a description, a candidate, a rejection or a reset to one member of the room."""

    type: Literal["signal"]
    to: MemberId
    ref: Ref | None = None


class SetMedia(_ClientMessage):
    type: Literal["media"]
    mic: bool
    camera: bool
    screen: bool
    recording: RecordingFlag = False  # v2 only: this member records the room


class Chat(_ClientMessage):
    type: Literal["chat"]
    text: str
    id: ClientChatId | None = None  # the client's id for it: a resent message is stored once


class HistoryRequest(_ClientMessage):
    type: Literal["history"]
    since: Annotated[int, Field(ge=0, le=2**53)]


class Call(_ClientMessage):
    type: Literal["call"]
    name: str


class CallAccept(_ClientMessage):
    type: Literal["call_accept"]
    call: CallId


class CallDecline(_ClientMessage):
    type: Literal["call_decline"]
    call: CallId


class CallCancel(_ClientMessage):
    type: Literal["call_cancel"]
    call: CallId


class PresenceWatch(_ClientMessage):
    type: Literal["presence_watch"]
    watch: bool = True


class Ping(_ClientMessage):
    type: Literal["ping"]


class Pong(_ClientMessage):
    type: Literal["pong"]


class IceRefresh(_ClientMessage):
    """Ask for ICE servers with fresh TURN credentials, before the ones held expire."""

    type: Literal["ice_refresh"]


class Hand(_ClientMessage):
    """Raise or lower one's own hand."""

    type: Literal["hand"]
    raised: bool


# The reactions a member can send: 👍 👏 😂 😮 ❤️ 🎉 🤔 👋, by name (an emoji's code points vary
# with variation selectors; a name does not).
ReactionName = Literal["thumbs_up", "clap", "laugh", "wow", "heart", "party", "thinking", "wave"]


class React(_ClientMessage):
    """Show a reaction to everyone in one's room or direct call, for a moment."""

    type: Literal["reaction"]
    reaction: ReactionName


# Host actions: each is refused with ``not_host`` unless the sender is a host of its room.


class RoomLock(_ClientMessage):
    """Lock the room (nobody new may join or knock) or unlock it."""

    type: Literal["room_lock"]
    locked: bool


class RoomPassword(_ClientMessage):
    """Set or change the room's password; null, absent or empty removes it."""

    type: Literal["room_password"]
    password: str | None = None


class RoomLobby(_ClientMessage):
    """Turn the lobby ("Ask to join") on or off. Off admits everyone waiting."""

    type: Literal["room_lobby"]
    enabled: bool


class LobbyAdmit(_ClientMessage):
    """Let one person waiting in the lobby in."""

    type: Literal["lobby_admit"]
    id: MemberId


class LobbyDeny(_ClientMessage):
    """Turn one person waiting in the lobby away."""

    type: Literal["lobby_deny"]
    id: MemberId


class MakeHost(_ClientMessage):
    """Make another member of the room a host too."""

    type: Literal["make_host"]
    id: MemberId


class Remove(_ClientMessage):
    """Take a member out of the room; they may come back only if a host admits them."""

    type: Literal["remove"]
    id: MemberId


MuteKind = Literal["mic", "camera"]


class Mute(_ClientMessage):
    """Turn off a member's microphone or camera; only they can turn it back on."""

    type: Literal["mute"]
    id: MemberId
    kind: MuteKind


class LowerHand(_ClientMessage):
    """Lower another member's raised hand."""

    type: Literal["lower_hand"]
    id: MemberId


class SfuPublish(_ClientMessage):
    """v3, in an SFU room: the offer of the member's sending connection (W3C webrtc-pc 4.4.1.5,
    ``createOffer``), first or renegotiated; answered by ``sfu_answer``. ``screen``: the
    ``mid`` of the transceiver that carries a screen share, null when none."""

    type: Literal["sfu_publish"]
    description: SessionDescription
    screen: Annotated[str, Field(max_length=32)] | None = None

    @model_validator(mode="after")
    def _an_offer(self) -> SfuPublish:
        if self.description.type != "offer":
            raise ValueError("description must be an offer")
        return self


class SfuSubscribe(_ClientMessage):
    """v3: the answer of the member's receiving connection to the latest ``sfu_offer``."""

    type: Literal["sfu_subscribe"]
    description: SessionDescription

    @model_validator(mode="after")
    def _an_answer(self) -> SfuSubscribe:
        if self.description.type != "answer":
            raise ValueError("description must be an answer")
        return self


class SfuCandidate(_ClientMessage):
    """v3: a trickled ICE candidate (RFC 8838) of the sending (``publisher``) or receiving
    (``subscriber``) connection; null (or absent) ends that connection's candidates."""

    type: Literal["sfu_candidate"]
    pc: Literal["publisher", "subscriber"]
    candidate: IceCandidate | None = None


class SfuRestart(_ClientMessage):
    """v3, in an SFU room: the member's connections to the SFU do not work (one failed, or
    never connected): the server opens a new place for it there and answers ``room_media``,
    after which the member publishes and subscribes anew. Rate-limited."""

    type: Literal["sfu_restart"]


SfuQualityLevel = Literal["low", "medium", "high"]


class SfuQuality(_ClientMessage):
    """v3, in an SFU room: which simulcast layer of ``member``'s video (camera and screen) to
    receive: ``low`` for a small tile, ``high`` for the speaker. Default: ``high``."""

    type: Literal["sfu_quality"]
    member: MemberId
    quality: SfuQualityLevel


class EndMeeting(_ClientMessage):
    """End the meeting for everyone: all members and everyone waiting leave the room."""

    type: Literal["end_meeting"]


class Record(_ClientMessage):
    """v2: start (``on``) or stop recording the room. The server runs the recorder, a member
    whose media says ``recording``; ``recording_unavailable`` when it cannot record."""

    type: Literal["record"]
    on: bool


ClientMessage = Annotated[
    Hello
    | Join
    | Leave
    | Signal
    | SetMedia
    | Chat
    | HistoryRequest
    | Call
    | CallAccept
    | CallDecline
    | CallCancel
    | PresenceWatch
    | Ping
    | Pong
    | IceRefresh
    | Hand
    | React
    | RoomLock
    | RoomPassword
    | RoomLobby
    | LobbyAdmit
    | LobbyDeny
    | MakeHost
    | Remove
    | Mute
    | LowerHand
    | EndMeeting
    | Record
    | SfuPublish
    | SfuSubscribe
    | SfuCandidate
    | SfuQuality
    | SfuRestart,
    Field(discriminator="type"),
]


# ------------------------------------------------------------------------- server -> client


class SignedInAccount(_Message):
    """The account a connection is signed in as (the ``salon_session`` cookie)."""

    username: str
    display_name: str


class Resumed(_Message):
    """In ``welcome`` after a successful ``hello.resume``: the place taken back."""

    room: str | None  # the room the member is in, null when none
    call: CallId | None  # the direct call whose room that is, null when none
    missed: bool  # messages may have been lost: a ``joined`` snapshot follows when in a room


class Welcome(_Message):
    type: Literal["welcome"] = "welcome"
    version: int
    id: MemberId
    name: str
    ice_servers: list[IceServer]
    limits: Limits
    resume_token: str
    account: SignedInAccount | None = None  # null for a guest
    resumed: Resumed | None = None  # null for a new member


class Joined(_Message):
    type: Literal["joined"] = "joined"
    room: str
    private: bool  # a direct call's room: nobody else can join
    members: list[MemberInfo]  # everyone else, oldest first
    history: list[ChatEntry]  # the most recent chat, oldest first
    last_seq: int  # the room's newest chat seq (0 when none)
    hosts: list[MemberId]  # the room's hosts (the receiver too, when it is one)
    locked: bool  # nobody new may join or knock
    lobby: bool  # newcomers wait until a host admits them
    protected: bool  # joining needs the room's password
    hands: list[MemberId]  # raised hands, the earliest first
    # v3: the room's media goes through the SFU: publish with ``sfu_publish`` and make no peer
    # connection to a member (docs/PROTOCOL.md §3.10). Always false for a v1 or v2 member.
    sfu: bool = False


class RoomMedia(_Message):
    """v3: the room's media moved to the SFU: close every peer connection of the room and
    publish with ``sfu_publish``. A room never moves back while its meeting lasts."""

    type: Literal["room_media"] = "room_media"
    room: str
    sfu: bool


class SfuAnswer(_Message):
    """v3: the SFU's answer to the member's ``sfu_publish``."""

    type: Literal["sfu_answer"] = "sfu_answer"
    description: SessionDescription


class SfuStream(_Message):
    """One m-line of an ``sfu_offer``: whose media it carries."""

    mid: str
    member: MemberId
    kind: Literal["audio", "video"]
    screen: bool  # the member's screen share, not its camera


class SfuOffer(_Message):
    """v3: the SFU's offer for the member's receiving connection (first, or renegotiated when
    someone starts or stops publishing); answer with ``sfu_subscribe``. ``streams`` names the
    member behind every m-line that carries media; an m-line not listed carries nothing."""

    type: Literal["sfu_offer"] = "sfu_offer"
    description: SessionDescription
    streams: list[SfuStream]


class Talking(_Message):
    """v3, in an SFU room: the SFU heard ``member`` start or stop talking (its voice activity,
    from the audio levels its microphone's packets carry, RFC 6464)."""

    type: Literal["talking"] = "talking"
    room: str
    member: MemberId
    talking: bool


class MemberJoined(_Message):
    """Someone was seated. ``replaces``: the member whose place it took over, the same
    person signed in again (docs/PROTOCOL.md §2.8): that member is gone from the room now
    (its ``member_left`` follows), and a client shows the newcomer in its stead."""

    type: Literal["member_joined"] = "member_joined"
    room: str
    member: MemberInfo
    replaces: Annotated[MemberId | None, Field(exclude_if=_none)] = None


class MemberLeft(_Message):
    type: Literal["member_left"] = "member_left"
    room: str
    id: MemberId


class MemberReconnecting(_Message):
    """A member's connection was lost; its place is kept for ``resume_grace_seconds``."""

    type: Literal["member_reconnecting"] = "member_reconnecting"
    room: str
    id: MemberId


class MemberResumed(_Message):
    """A member is back (a known id keeps its peer connection; an unknown one is new)."""

    type: Literal["member_resumed"] = "member_resumed"
    room: str
    member: MemberInfo


class ResumeTokenIssued(_Message):
    """A fresh resume token, replacing the one held: whenever what it carries changes (the
    room, the host role, the password, reachability) and at half its lifetime."""

    type: Literal["resume_token"] = "resume_token"
    token: str


class ServerDraining(_Message):
    """The server is shutting down; the connection closes with 1012 soon after."""

    type: Literal["server_draining"] = "server_draining"
    retry_after_ms: int  # wait at least this long before reconnecting


LeftReason = Literal["left", "removed", "ended", "hangup"]


class Left(_Message):
    type: Literal["left"] = "left"
    room: str
    # left: the member's own leave; removed: a host removed it; ended: a host ended the
    # meeting for everyone; hangup: the other side of a direct call hung up.
    reason: LeftReason = "left"
    by: MemberId | None = None  # the host who removed it or ended the meeting, else null
    by_name: str | None = None  # that host's name


class RoomState(_Message):
    """The room's hosts and protections changed (sent to every member of the room)."""

    type: Literal["room_state"] = "room_state"
    room: str
    hosts: list[MemberId]
    locked: bool
    lobby: bool
    protected: bool


class Reacted(_Aliased):
    """A member reacted (sent to everyone in its room or call, the sender too). Nothing is
    stored: a member who is away when it is sent gets it on resume only while it is kept."""

    type: Literal["reaction"] = "reaction"
    sender: MemberId = Field(alias="from")
    reaction: ReactionName


class Hands(_Message):
    """The raised hands of the room changed (sent to every member)."""

    type: Literal["hands"] = "hands"
    room: str
    raised: list[MemberId]  # the earliest first


RoomAction = Literal[
    "locked",
    "unlocked",
    "password_set",
    "password_removed",
    "lobby_on",
    "lobby_off",
    "admitted",
    "denied",
    "removed",
    "muted_mic",
    "stopped_camera",
    "hand_lowered",
    "host_granted",
    "host_passed",
    "recording_started",  # v2: by the host who asked; the recorder joins next
    "recording_stopped",  # v2: by the host who asked; null when the recorder ended by itself
]


class RoomEvent(_Message):
    """What a host did, or a role that passed on, told to every member as it happens."""

    type: Literal["room_event"] = "room_event"
    room: str
    action: RoomAction
    by: MemberId | None  # the host who did it; null when the server did (host_passed)
    by_name: str | None
    target: MemberId | None  # the member it was done to; null for room-wide actions
    target_name: str | None


class Knocker(_Message):
    """Someone waiting in the lobby."""

    id: MemberId
    name: str
    removed: bool  # a host removed this person from the room earlier


class Lobby(_Message):
    """Who waits in the lobby, the earliest first (sent to hosts only, on every change)."""

    type: Literal["lobby"] = "lobby"
    room: str
    waiting: list[Knocker]


class LobbyWaiting(_Message):
    """To the joiner: you wait in the lobby until a host admits you (``joined``) or not."""

    type: Literal["lobby_waiting"] = "lobby_waiting"
    room: str


LobbyDeniedReason = Literal["denied", "ended"]


class LobbyDenied(_Message):
    """To a person waiting in the lobby: you will not be let in."""

    type: Literal["lobby_denied"] = "lobby_denied"
    room: str
    # denied: a host said no; ended: the meeting ended (nobody is left to admit you)
    reason: LobbyDeniedReason


class Muted(_Message):
    """To a member: a host turned off your microphone or camera. Stop sending it now and
    send ``media``; only you can turn it back on."""

    type: Literal["muted"] = "muted"
    room: str
    kind: MuteKind
    by: MemberId
    by_name: str


class Unreachable(_Message):
    """Your name is no longer reachable for direct calls: its registered owner signed in."""

    type: Literal["unreachable"] = "unreachable"
    name: str


class SignalRelay(_SignalPayload):
    type: Literal["signal"] = "signal"
    sender: MemberId = Field(alias="from")

    model_config = ConfigDict(  # as _Aliased's: the mypy plugin reads it only here
        strict=True,
        extra="ignore",
        frozen=True,
        json_schema_serialization_defaults_required=True,
        populate_by_name=True,
    )


class MediaChanged(_Aliased):
    type: Literal["media"] = "media"
    sender: MemberId = Field(alias="from")
    mic: bool
    camera: bool
    screen: bool
    recording: RecordingFlag = False  # v2; left out while false

    @classmethod
    def of(cls, sender: MemberId, media: MediaState) -> MediaChanged:
        """What the room is told when ``sender``'s media became ``media``."""
        return cls(
            sender=sender,
            mic=media.mic,
            camera=media.camera,
            screen=media.screen,
            recording=media.recording,
        )


class ChatDelivered(ChatEntry):
    type: Literal["chat"] = "chat"


class History(_Message):
    type: Literal["history"] = "history"
    room: str
    messages: list[ChatEntry]
    more: bool  # true when the answer was cut at the page size; ask again from the last seq


class Presence(_Message):
    type: Literal["presence"] = "presence"
    names: list[str]


class PresenceChanged(_Message):
    type: Literal["presence_changed"] = "presence_changed"
    name: str
    online: bool
    reconnecting: bool = False  # online, but its connection is lost for now (grace window)


class IncomingCall(_Aliased):
    type: Literal["incoming_call"] = "incoming_call"
    call: CallId
    sender: MemberId = Field(alias="from")
    name: str


class Ringing(_Message):
    type: Literal["ringing"] = "ringing"
    call: CallId
    name: str


CallEndReason = Literal["declined", "cancelled", "timeout", "busy", "offline", "hangup"]


class CallEnded(_Message):
    type: Literal["call_ended"] = "call_ended"
    call: CallId
    reason: CallEndReason


class CallAccepted(_Message):
    type: Literal["call_accepted"] = "call_accepted"
    call: CallId
    room: str


class ServerPing(_Message):
    type: Literal["ping"] = "ping"


class ServerPong(_Message):
    type: Literal["pong"] = "pong"
    ref: Ref | None = None


class IceServers(_Message):
    """The answer to ``ice_refresh``: the same list as ``welcome.ice_servers``, issued now."""

    type: Literal["ice_servers"] = "ice_servers"
    ice_servers: list[IceServer]
    ref: Ref | None = None


class RecordingFile(_Message):
    """One file of a recording: a participant's media (WebM) or the chat (JSON Lines)."""

    name: str  # the file's name, unique in its recording
    bytes: int  # its size now (it grows while the recording runs)
    # A same-origin path that downloads it (GET), with a signed key valid for 1 hour:
    # ``/api/v1/recordings/{id}/files/{name}?key=...``.
    url: str


class Recording(_Message):
    """A recording of the room, as its hosts see it."""

    id: str
    started: int  # milliseconds since the Unix epoch, server clock
    ended: int | None  # null while it runs
    bytes: int  # all its files together
    files: list[RecordingFile]


class Recordings(_Message):
    """v2, to the room's hosts only: the room's recordings, the earliest first. Sent after
    ``joined`` when there are any, on becoming a host, and whenever the list changes."""

    type: Literal["recordings"] = "recordings"
    room: str
    recordings: list[Recording]


class Error(_Message):
    type: Literal["error"] = "error"
    code: ErrorCode
    message: str
    ref: Ref | None = None


ServerMessage = Annotated[
    Welcome
    | Joined
    | MemberJoined
    | MemberLeft
    | MemberReconnecting
    | MemberResumed
    | ResumeTokenIssued
    | ServerDraining
    | Left
    | RoomState
    | Hands
    | Reacted
    | RoomEvent
    | Lobby
    | LobbyWaiting
    | LobbyDenied
    | Muted
    | Unreachable
    | SignalRelay
    | MediaChanged
    | ChatDelivered
    | History
    | Presence
    | PresenceChanged
    | IncomingCall
    | Ringing
    | CallEnded
    | CallAccepted
    | ServerPing
    | ServerPong
    | IceServers
    | Recordings
    | RoomMedia
    | SfuAnswer
    | SfuOffer
    | Talking
    | Error,
    Field(discriminator="type"),
]
