import { afterEach, describe, expect, it, vi } from "vitest";
import { probeLines } from "../ui/connectivity";
import { candidateType, probeIce } from "./probe";

type Script = (pc: FakeProbe) => void;

/** Just enough of an RTCPeerConnection to gather: the script plays the ICE agent. */
class FakeProbe {
  onicecandidate: ((e: { candidate: { type: string | null; candidate: string } | null }) => void) | null =
    null;
  onicecandidateerror: ((e: { url: string; errorCode: number }) => void) | null = null;
  channels: string[] = [];
  closed = false;
  constructor(
    readonly config: RTCConfiguration,
    private readonly script: Script,
  ) {}
  createDataChannel(label: string) {
    this.channels.push(label);
  }
  async createOffer() {
    return { type: "offer", sdp: "v=0" };
  }
  async setLocalDescription() {
    setTimeout(() => this.script(this), 10);
  }
  close() {
    this.closed = true;
  }
  // script side
  found(type: string) {
    this.onicecandidate?.({
      candidate: { type, candidate: `candidate:1 1 udp 1 192.0.2.1 5000 typ ${type}` },
    });
  }
  failed(url: string, errorCode: number) {
    this.onicecandidateerror?.({ url, errorCode });
  }
  complete() {
    this.onicecandidate?.({ candidate: null });
  }
}

const STUN = { urls: ["stun:turn.example.org:3478"] };
const TURN = { urls: ["turn:turn.example.org:3478?transport=udp"], username: "1:m", credential: "c" };

function run(servers: RTCIceServer[], script: Script) {
  const made: FakeProbe[] = [];
  const result = probeIce(servers, {
    gatherMs: 5000,
    factory: (config) => {
      const pc = new FakeProbe(config, script);
      made.push(pc);
      return pc as unknown as RTCPeerConnection;
    },
  });
  return { result, made };
}

afterEach(() => {
  vi.useRealTimers();
});

describe("probeIce", () => {
  it("finds local, direct and relay paths when everything works", async () => {
    const { result, made } = run([STUN, TURN], (pc) => {
      pc.found("host");
      pc.found("srflx");
      pc.found("relay");
      // No completion needed: everything configured has answered.
    });
    expect(await result).toEqual({
      local: true,
      direct: true,
      relay: true,
      stunConfigured: true,
      turnConfigured: true,
      relayProblem: null,
    });
    expect(made[0]?.config.iceServers).toEqual([STUN, TURN]);
    expect(made[0]?.channels).toEqual(["probe"]);
    expect(made[0]?.closed).toBe(true);
    expect(probeLines(await result).map((l) => l.verdict)).toEqual(["ok", "ok", "ok"]);
  });

  it("says the relay refused the credentials on a 401", async () => {
    const { result } = run([STUN, TURN], (pc) => {
      pc.found("host");
      pc.found("srflx");
      pc.failed("stun:turn.example.org:3478", 701); // not a TURN url: ignored
      pc.failed("turn:turn.example.org:3478?transport=udp", 401);
      pc.complete();
    });
    const found = await result;
    expect(found).toMatchObject({ relay: false, relayProblem: "refused" });
    expect(probeLines(found)[2]).toMatchObject({
      verdict: "problem",
      text: "Relay: not available, the relay server refused the credentials.",
    });
  });

  it("says the relay could not be reached on a 701", async () => {
    const { result } = run([TURN], (pc) => {
      pc.found("host");
      pc.failed("turn:turn.example.org:3478?transport=udp", 701);
      pc.complete();
    });
    const found = await result;
    expect(found).toMatchObject({ relay: false, direct: false, relayProblem: "unreachable" });
    expect(probeLines(found)[2]?.text).toBe("Relay: not available, the relay server could not be reached.");
  });

  it("gives up after the gathering time, without a cause to name", async () => {
    vi.useFakeTimers();
    const { result, made } = run([TURN], (pc) => pc.found("host")); // never completes
    await vi.advanceTimersByTimeAsync(4999);
    expect(made[0]?.closed).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    const found = await result;
    expect(made[0]?.closed).toBe(true);
    expect(found.relayProblem).toBe("unknown");
    expect(probeLines(found)[2]?.text).toBe(
      "Relay: not available, the relay server could not be reached or refused the credentials.",
    );
  });

  it("without any server, reports only the local network", async () => {
    const { result } = run([], (pc) => {
      pc.found("host");
      pc.complete();
    });
    const found = await result;
    expect(found).toMatchObject({ local: true, turnConfigured: false, relayProblem: null });
    expect(probeLines(found).map((l) => l.verdict)).toEqual(["ok", "off", "off"]);
  });

  it("reports nothing when the browser has no WebRTC", async () => {
    const found = await probeIce([TURN], {
      factory: () => {
        throw new ReferenceError("RTCPeerConnection is not defined");
      },
    });
    expect(found).toMatchObject({ local: false, relay: false, relayProblem: "unknown" });
  });

  it("reads the candidate type from an SDP line", () => {
    expect(candidateType("candidate:1 1 udp 2 10.0.0.1 5000 typ host generation 0")).toBe("host");
    expect(candidateType("candidate:1 1 udp 2 10.0.0.1 5000 typ relay raddr 1.2.3.4")).toBe("relay");
    expect(candidateType("garbage")).toBeNull();
  });
});
