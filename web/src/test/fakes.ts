/**
 * Fakes for the browser objects the client core uses: a WebSocket and an RTCPeerConnection
 * that models the JSEP signaling states (webrtc-pc 4.3.1), including implicit rollback.
 */
import type { Limits } from "../protocol";
import type { SocketLike } from "../signaling/client";

/** The server's default limits, as a `welcome` announces them. */
export const LIMITS: Limits = {
  max_frame_bytes: 65536,
  max_name_chars: 64,
  max_chat_chars: 4000,
  max_room_members: 8,
  rate_per_second: 50,
  rate_burst: 200,
  ping_after_seconds: 20,
  dead_after_seconds: 45,
  ring_seconds: 30,
};

export class FakeSocket implements SocketLike {
  readyState = 0;
  sent: unknown[] = [];
  onopen: SocketLike["onopen"] = null;
  onmessage: SocketLike["onmessage"] = null;
  onclose: SocketLike["onclose"] = null;
  onerror: SocketLike["onerror"] = null;
  closedWith: number | null = null;

  send(data: string): void {
    this.sent.push(JSON.parse(data));
  }
  close(code = 1000): void {
    this.closedWith = code;
    this.readyState = 3;
  }
  // test side
  open(): void {
    this.readyState = 1;
    this.onopen?.({});
  }
  receive(message: object): void {
    this.onmessage?.({ data: JSON.stringify(message) });
  }
  drop(code = 1006): void {
    this.readyState = 3;
    this.onclose?.({ code, reason: "" });
  }
}

const tick = () => new Promise<void>((resolve) => setTimeout(resolve, 0));

let sdpCounter = 0;

class FakeSender {
  constructor(public track: unknown) {}
  async replaceTrack(track: unknown): Promise<void> {
    this.track = track;
  }
}

class FakeTransceiver {
  constructor(
    public sender: FakeSender,
    public direction: string,
  ) {}
}

/** An RTCPeerConnection with real signaling-state rules and nothing else. */
export class FakePeerConnection {
  signalingState: RTCSignalingState = "stable";
  connectionState: RTCPeerConnectionState = "new";
  iceConnectionState: RTCIceConnectionState = "new";
  localDescription: RTCSessionDescriptionInit | null = null;
  remoteDescription: RTCSessionDescriptionInit | null = null;
  candidates: RTCIceCandidateInit[] = [];
  transceivers: FakeTransceiver[] = [];
  restarts = 0;
  closed = false;
  onnegotiationneeded: (() => void) | null = null;
  onicecandidate: ((e: { candidate: unknown }) => void) | null = null;
  ontrack: ((e: unknown) => void) | null = null;
  onconnectionstatechange: (() => void) | null = null;
  oniceconnectionstatechange: (() => void) | null = null;
  private stableLocal: RTCSessionDescriptionInit | null = null;

  constructor(readonly label: string) {}

  async setLocalDescription(): Promise<void> {
    await tick();
    if (this.signalingState === "have-remote-offer") {
      this.localDescription = { type: "answer", sdp: `${this.label}-answer-${++sdpCounter}` };
      this.signalingState = "stable";
      this.stableLocal = this.localDescription;
    } else if (this.signalingState === "stable" || this.signalingState === "have-local-offer") {
      this.localDescription = { type: "offer", sdp: `${this.label}-offer-${++sdpCounter}` };
      this.signalingState = "have-local-offer";
    } else {
      throw new DOMException("wrong state", "InvalidStateError");
    }
    this.gather();
  }

  async setRemoteDescription(description: RTCSessionDescriptionInit): Promise<void> {
    await tick();
    if (description.type === "offer") {
      if (this.signalingState === "have-local-offer") {
        this.localDescription = this.stableLocal; // implicit rollback (webrtc-pc 4.4.1.6)
      } else if (this.signalingState !== "stable") {
        throw new DOMException("wrong state", "InvalidStateError");
      }
      this.signalingState = "have-remote-offer";
    } else if (description.type === "answer") {
      if (this.signalingState !== "have-local-offer")
        throw new DOMException("wrong state", "InvalidStateError");
      this.signalingState = "stable";
      this.stableLocal = this.localDescription;
    }
    this.remoteDescription = description;
  }

  async addIceCandidate(candidate: RTCIceCandidateInit): Promise<void> {
    if (this.remoteDescription === null) throw new DOMException("no remote description", "InvalidStateError");
    this.candidates.push(candidate);
  }

  addTrack(track: unknown): FakeSender {
    const sender = new FakeSender(track);
    this.transceivers.push(new FakeTransceiver(sender, "sendrecv"));
    this.needNegotiation();
    return sender;
  }

  addTransceiver(_kind: string, init: { direction: string }): FakeTransceiver {
    const transceiver = new FakeTransceiver(new FakeSender(null), init.direction);
    this.transceivers.push(transceiver);
    this.needNegotiation();
    return transceiver;
  }

  removeTrack(sender: FakeSender): void {
    sender.track = null;
    this.needNegotiation();
  }

  getTransceivers(): FakeTransceiver[] {
    return this.transceivers;
  }

  getReceivers(): unknown[] {
    return [];
  }

  configuration: RTCConfiguration = {};
  getConfiguration(): RTCConfiguration {
    return this.configuration;
  }
  setConfiguration(configuration: RTCConfiguration): void {
    this.configuration = configuration;
  }

  restartIce(): void {
    this.restarts += 1;
  }

  close(): void {
    this.closed = true;
    this.signalingState = "closed";
  }

  /** negotiationneeded is queued, like the browser's (webrtc-pc 4.7.3). */
  needNegotiation(): void {
    setTimeout(() => {
      if (this.signalingState === "stable" && !this.closed) this.onnegotiationneeded?.();
    }, 0);
  }

  private gather(): void {
    const candidate = `candidate:${this.label} 1 udp 1 127.0.0.1 ${1000 + sdpCounter} typ host`;
    setTimeout(() => {
      this.onicecandidate?.({
        candidate: { candidate, toJSON: () => ({ candidate, sdpMid: "0", sdpMLineIndex: 0 }) },
      });
    }, 0);
  }
}

export const asPc = (fake: FakePeerConnection) => fake as unknown as RTCPeerConnection;

/** Let queued timers and promise callbacks run until things settle. */
export async function settle(rounds = 30): Promise<void> {
  for (let i = 0; i < rounds; i++) await tick();
}
