import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { ServerOf } from "../protocol";
import type { SfuStream } from "../protocol/generated";
import { FakePeerConnection, settleNow } from "../test/fakes";
import { PUBLISH_RETRY_FIRST_MS, PUBLISH_RETRY_MAX_MS, SfuMedia, type SfuSignal } from "./sfu";

class FakeStream {
  constructor(readonly tracks: unknown[]) {}
}

const track = (kind: string, id = kind) => ({ kind, id }) as unknown as MediaStreamTrack;
const trackIdOf = (value: unknown) => (value as MediaStreamTrack | null)?.id ?? null;

/** An SfuMedia over fake connections; `sent` also notes the subscriber's offer when an answer went. */
function sfu() {
  const made: FakePeerConnection[] = [];
  const sent: SfuSignal[] = [];
  const answeredOffers: (string | undefined)[] = [];
  const media = new SfuMedia(
    (message) => {
      sent.push(message);
      if (message.type === "sfu_subscribe") answeredOffers.push(made[1]?.remoteDescription?.sdp);
    },
    { iceServers: [], bundlePolicy: "max-bundle" },
    (config) => {
      const pc = new FakePeerConnection(`pc${made.length}`);
      pc.configuration = config;
      made.push(pc);
      return pc as unknown as RTCPeerConnection;
    },
    { streamFactory: (tracks) => new FakeStream(tracks) as unknown as MediaStream },
  );
  return { media, made, sent, answeredOffers };
}

type Sent<T extends SfuSignal["type"]> = Extract<SfuSignal, { type: T }>;
const ofType = <T extends SfuSignal["type"]>(sent: SfuSignal[], type: T): Sent<T>[] =>
  sent.filter((m): m is Sent<T> => m.type === type);

const ANSWER: ServerOf<"sfu_answer"> = {
  type: "sfu_answer",
  description: { type: "answer", sdp: "sfu answer" },
};

/** The server's answer, applied (the fake connection settles on fake timers). */
async function answer(media: SfuMedia): Promise<void> {
  void media.receive(ANSWER);
  await settleNow();
}

/** The SFU's offer: one m-line per stream, plus `unlisted` m-lines that carry nothing. */
function offer(streams: SfuStream[], unlisted: [kind: string, mid: string][] = []): ServerOf<"sfu_offer"> {
  const mLines = [...streams.map((s): [string, string] => [s.kind, s.mid]), ...unlisted];
  const sdp = [
    "v=0",
    `o=- 77 ${mLines.length} IN IP4 0.0.0.0`,
    ...mLines.flatMap(([kind, mid]) => [`m=${kind} 9 UDP/TLS/RTP/SAVPF 96`, `a=mid:${mid}`, "a=sendonly"]),
    "",
  ].join("\r\n");
  return { type: "sfu_offer", description: { type: "offer", sdp }, streams };
}

const stream = (mid: string, member: string, kind: "audio" | "video", screen = false): SfuStream => ({
  mid,
  member,
  kind,
  screen,
});

const BOB_AND_CY = [stream("a0", "bob", "audio"), stream("v0", "bob", "video"), stream("a1", "cy", "audio")];

/** The tracks of a stream the fake factory made. */
const tracksOf = (value: MediaStream | null | undefined) =>
  ((value as unknown as FakeStream | null)?.tracks ?? []).map(trackIdOf);

/** The receiver track id of the subscriber's transceiver for this mid. */
const receivedOn = (pc: FakePeerConnection | undefined, mid: string) =>
  pc?.transceivers.find((t) => t.mid === mid)?.receiver.track.id;

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
  vi.restoreAllMocks();
});

describe("SfuMedia publisher", () => {
  it("offers sendonly audio and video at start, even with nothing to send yet", async () => {
    const { media, made, sent } = sfu();
    expect(media.active).toBe(false);
    media.start();
    expect(media.active).toBe(true);
    await settleNow();
    const pc = made[0]!;
    expect(made).toHaveLength(1); // the subscriber waits for the SFU's offer
    expect(pc.configuration.bundlePolicy).toBe("max-bundle");
    expect(pc.transceivers.map((t) => [t.direction, t.sender.track])).toEqual([
      ["sendonly", null],
      ["sendonly", null],
    ]);
    expect(ofType(sent, "sfu_publish")).toEqual([
      {
        type: "sfu_publish",
        description: { type: "offer", sdp: pc.localDescription?.sdp },
        screen: null,
        ref: "sfu-publish",
      },
    ]);
  });

  it("has one offer out at a time: what changes meanwhile is offered once the answer is in", async () => {
    const { media, made, sent } = sfu();
    media.start();
    await settleNow();
    media.setTrack("screen", track("video", "screen1"));
    await settleNow();
    expect(ofType(sent, "sfu_publish")).toHaveLength(1);
    await answer(media);
    await settleNow();
    expect(made[0]?.remoteDescription?.sdp).toBe("sfu answer");
    const publishes = ofType(sent, "sfu_publish");
    expect(publishes).toHaveLength(2);
    expect(publishes[1]?.screen).toBe("2");
    await answer(media);
    await answer(media); // no offer is out: dropped, not applied
    await settleNow();
    expect(ofType(sent, "sfu_publish")).toHaveLength(2);
    expect(made[0]?.signalingState).toBe("stable");
    expect(media.trail).toContain("answer without an offer dropped");
  });

  it("switches devices and stops sending with replaceTrack, without renegotiating", async () => {
    const { media, made, sent } = sfu();
    media.setTrack("audio", track("audio", "mic1"));
    media.setTrack("video", track("video", "cam1"));
    media.start();
    await settleNow();
    await answer(media);
    const [audio, video] = made[0]!.transceivers.map((t) => t.sender);
    expect([trackIdOf(audio?.track), trackIdOf(video?.track)]).toEqual(["mic1", "cam1"]);
    media.setSending("video", false);
    await settleNow();
    expect(video?.track).toBeNull(); // a camera turned off sends nothing at all
    media.setSending("video", true);
    media.setTrack("video", track("video", "cam2"));
    media.setSending("audio", false);
    media.setTrack("audio", track("audio", "mic2")); // a new microphone while muted stays unsent
    await settleNow();
    expect([trackIdOf(audio?.track), trackIdOf(video?.track)]).toEqual([null, "cam2"]);
    media.setSending("audio", true);
    await settleNow();
    expect(trackIdOf(audio?.track)).toBe("mic2");
    expect(made[0]?.transceivers).toHaveLength(2);
    expect(ofType(sent, "sfu_publish")).toHaveLength(1);
  });

  it("a screen share renegotiates on its own transceiver, with `screen` naming its mid", async () => {
    const { media, made, sent } = sfu();
    media.start();
    await settleNow();
    await answer(media);
    const pc = made[0]!;
    const answerEach = async () => {
      await settleNow();
      await answer(media);
      await settleNow();
    };
    media.setTrack("screen", track("video", "screen1"));
    await answerEach();
    const screen = pc.transceivers[2]!;
    expect([screen.mid, screen.direction, trackIdOf(screen.sender.track)]).toEqual([
      "2",
      "sendonly",
      "screen1",
    ]);
    expect(ofType(sent, "sfu_publish").map((p) => p.screen)).toEqual([null, "2"]);
    media.setTrack("screen", track("video", "window2")); // another window: no new offer
    await answerEach();
    expect(trackIdOf(screen.sender.track)).toBe("window2");
    expect(ofType(sent, "sfu_publish")).toHaveLength(2);
    media.setTrack("screen", null);
    await answerEach();
    expect([screen.direction, screen.sender.track]).toEqual(["inactive", null]);
    media.setTrack("screen", track("video", "screen3"));
    await answerEach();
    expect(pc.transceivers).toHaveLength(3); // the same transceiver again, not a new m-line
    expect([screen.direction, trackIdOf(screen.sender.track)]).toEqual(["sendonly", "screen3"]);
    expect(ofType(sent, "sfu_publish").map((p) => p.screen)).toEqual([null, "2", null, "2"]);
  });

  it("includes a screen share that started before SFU media in the first offer", async () => {
    const { media, made, sent } = sfu();
    media.setTrack("screen", track("video", "screen1"));
    media.start();
    await settleNow();
    expect(made[0]?.transceivers.map((t) => t.direction)).toEqual(["sendonly", "sendonly", "sendonly"]);
    expect(ofType(sent, "sfu_publish").map((p) => p.screen)).toEqual(["2"]);
  });

  it("offers again after a refusal that may pass: 1 s, 2 s, 4 s … at most 10 s", async () => {
    vi.spyOn(console, "warn").mockImplementation(() => {});
    const { media, sent } = sfu();
    media.start();
    await settleNow();
    const publishes = () => ofType(sent, "sfu_publish").length;
    expect([PUBLISH_RETRY_FIRST_MS, PUBLISH_RETRY_MAX_MS]).toEqual([1_000, 10_000]);
    for (const [round, delay] of [1_000, 2_000, 4_000, 8_000, 10_000, 10_000].entries()) {
      const before = publishes();
      expect(media.refused(round % 2 === 0 ? "sfu_unavailable" : "not_sfu_room", "sfu-publish")).toBe(true);
      await vi.advanceTimersByTimeAsync(delay - 1);
      expect(publishes()).toBe(before);
      await vi.advanceTimersByTimeAsync(1);
      await settleNow();
      expect(publishes()).toBe(before + 1);
    }
    await answer(media); // an answer starts the delays over
    media.setTrack("screen", track("video", "screen1"));
    await settleNow();
    media.refused("sfu_unavailable", "sfu-publish");
    const before = publishes();
    await vi.advanceTimersByTimeAsync(1_000);
    await settleNow();
    expect(publishes()).toBe(before + 1);
  });

  it("does not retry other refusals, nor after closing, and leaves other errors alone", async () => {
    vi.spyOn(console, "warn").mockImplementation(() => {});
    const { media, sent } = sfu();
    media.start();
    await settleNow();
    expect(media.refused("no_such_member", null)).toBe(false); // not about SFU media
    expect(media.refused("sfu_unavailable", "sfu-candidate")).toBe(true); // noted, nothing to redo
    expect(media.refused("bad_message", "sfu-publish")).toBe(true);
    await vi.advanceTimersByTimeAsync(30_000);
    expect(ofType(sent, "sfu_publish")).toHaveLength(1);
    media.setTrack("screen", track("video", "screen1")); // the next change offers again
    await settleNow();
    expect(ofType(sent, "sfu_publish")).toHaveLength(2);
    media.refused("sfu_unavailable", "sfu-publish");
    media.close();
    await vi.advanceTimersByTimeAsync(30_000);
    expect(ofType(sent, "sfu_publish")).toHaveLength(2);
  });
});

describe("SfuMedia subscriber", () => {
  it("answers each offer after the one before it, and maps m-lines to members", async () => {
    const { media, made, sent, answeredOffers } = sfu();
    media.start();
    await settleNow();
    const first = offer(BOB_AND_CY, [["video", "x9"]]);
    const second = offer([...BOB_AND_CY, stream("s0", "bob", "video", true)], [["video", "x9"]]);
    void media.receive(first);
    void media.receive(second); // before the first is answered
    await settleNow();
    const subscriber = made[1]!;
    expect(answeredOffers).toEqual([first.description.sdp, second.description.sdp]);
    expect(ofType(sent, "sfu_subscribe")).toEqual([
      {
        type: "sfu_subscribe",
        description: { type: "answer", sdp: expect.any(String) },
        ref: "sfu-subscribe",
      },
      {
        type: "sfu_subscribe",
        description: { type: "answer", sdp: subscriber.localDescription?.sdp },
        ref: "sfu-subscribe",
      },
    ]);
    expect(media.remote.map((p) => [p.id, tracksOf(p.camera), tracksOf(p.screen)])).toEqual([
      ["bob", [receivedOn(subscriber, "a0"), receivedOn(subscriber, "v0")], [receivedOn(subscriber, "s0")]],
      ["cy", [receivedOn(subscriber, "a1")], []],
    ]);
    expect(media.remote.map((p) => [p.polite, p.connection, p.recovery])).toEqual([
      [false, "new", null],
      [false, "new", null],
    ]);
    subscriber.setIceState("connected");
    expect(media.remote.map((p) => p.connection)).toEqual(["connected", "connected"]);
    expect(media.connection).toBe("connected");
  });

  it("keeps a tile's stream while its tracks stay, and drops members the offer no longer lists", async () => {
    const { media } = sfu();
    media.start();
    void media.receive(offer(BOB_AND_CY));
    await settleNow();
    const camera = media.remote.find((p) => p.id === "bob")?.camera;
    expect(camera).toBeInstanceOf(FakeStream);
    const changes = vi.fn();
    media.onChange(changes);
    void media.receive(
      offer([stream("a0", "bob", "audio"), stream("v0", "bob", "video")], [["audio", "a1"]]),
    );
    await settleNow();
    expect(changes).toHaveBeenCalled();
    expect(media.remote.map((p) => p.id)).toEqual(["bob"]); // cy stopped publishing
    expect(media.remote[0]?.camera).toBe(camera); // the same tracks: the same stream
    void media.receive(
      offer(
        [stream("a0", "bob", "audio")],
        [
          ["video", "v0"],
          ["audio", "a1"],
        ],
      ),
    );
    await settleNow();
    expect(media.remote[0]?.camera).not.toBe(camera); // bob's camera went
    expect(tracksOf(media.remote[0]?.camera)).toHaveLength(1);
  });

  it("trickles each connection's candidates with its `pc`, and ends them with null", async () => {
    const { media, made, sent } = sfu();
    media.start();
    await settleNow();
    void media.receive(offer(BOB_AND_CY));
    await settleNow();
    const [publisher, subscriber] = made;
    const candidates = ofType(sent, "sfu_candidate");
    expect(candidates.map((c) => [c.pc, c.candidate?.candidate.split(" ")[0]])).toEqual([
      ["publisher", "candidate:pc0"],
      ["subscriber", "candidate:pc1"],
    ]);
    expect(candidates[0]).toEqual({
      type: "sfu_candidate",
      pc: "publisher",
      candidate: {
        candidate: expect.stringMatching(/^candidate:pc0 /),
        sdpMid: "0",
        sdpMLineIndex: 0,
        usernameFragment: publisher?.ufrag,
      },
      ref: "sfu-candidate",
    });
    sent.length = 0;
    const ending = { candidate: "", toJSON: () => ({ candidate: "" }) };
    publisher?.onicecandidate?.({ candidate: ending }); // not a candidate: skipped
    publisher?.onicecandidate?.({ candidate: null });
    subscriber?.onicecandidate?.({ candidate: null });
    expect(sent).toEqual([
      { type: "sfu_candidate", pc: "publisher", candidate: null, ref: "sfu-candidate" },
      { type: "sfu_candidate", pc: "subscriber", candidate: null, ref: "sfu-candidate" },
    ]);
  });
});

describe("SfuMedia", () => {
  it("starts again from scratch: new connections, and nothing of the old ones applies", async () => {
    const { media, made, sent } = sfu();
    media.setTrack("audio", track("audio", "mic1"));
    media.start();
    await settleNow();
    void media.receive(offer(BOB_AND_CY));
    await settleNow();
    expect(media.remote).toHaveLength(2);
    const late = media.receive(offer(BOB_AND_CY)); // sent before the SFU restarted
    media.start();
    await late;
    await settleNow();
    expect(made.slice(0, 2).map((pc) => pc.closed)).toEqual([true, true]);
    expect(made).toHaveLength(3); // a new publisher; the late offer made no subscriber
    expect(media.remote).toEqual([]);
    expect(trackIdOf(made[2]?.transceivers[0]?.sender.track)).toBe("mic1");
    expect(ofType(sent, "sfu_publish").at(-1)?.description.sdp).toBe(made[2]?.localDescription?.sdp);
    expect(ofType(sent, "sfu_subscribe")).toHaveLength(1);
    void media.receive(offer(BOB_AND_CY));
    await settleNow();
    expect(made).toHaveLength(4);
    expect(media.remote.map((p) => p.id)).toEqual(["bob", "cy"]);
  });

  it("closes both connections, and ignores what comes after", async () => {
    const { media, made } = sfu();
    media.start();
    void media.receive(offer(BOB_AND_CY));
    await settleNow();
    media.close();
    expect(media.active).toBe(false);
    expect(made.map((pc) => pc.closed)).toEqual([true, true]);
    expect(media.remote).toEqual([]);
    expect(media.connection).toBe("new");
    void media.receive(offer(BOB_AND_CY));
    media.setTrack("screen", track("video", "screen1"));
    await settleNow();
    expect(made).toHaveLength(2);
    expect(await media.stats()).toEqual({});
  });

  it("gives both connections new ICE servers", async () => {
    const { media, made } = sfu();
    media.start();
    void media.receive(offer(BOB_AND_CY));
    await settleNow();
    const iceServers = [{ urls: "turn:turn.example:3478", username: "u", credential: "c" }];
    media.setIceServers(iceServers);
    expect(made.map((pc) => pc.configurations.at(-1)?.iceServers)).toEqual([iceServers, iceServers]);
    media.start();
    expect(made[2]?.configuration.iceServers).toEqual(iceServers);
  });

  it("reports per member what came on its m-lines, and what the publisher sent", async () => {
    const { media, made } = sfu();
    media.start();
    void media.receive(offer([...BOB_AND_CY, stream("s0", "bob", "video", true)]));
    await settleNow();
    const [publisher, subscriber] = made;
    const entries = (list: Record<string, unknown>[]) => new Map(list.map((s) => [String(s.id), s]));
    subscriber!.report = entries([
      { id: "IA0", type: "inbound-rtp", kind: "audio", mid: "a0", bytesReceived: 100, packetsReceived: 10 },
      { id: "IV0", type: "inbound-rtp", kind: "video", mid: "v0", framesDecoded: 30, bytesReceived: 900 },
      // No `mid` in this browser's report: told by the receiver's track instead.
      {
        id: "IS0",
        type: "inbound-rtp",
        kind: "video",
        trackIdentifier: receivedOn(subscriber, "s0"),
        framesDecoded: 5,
      },
      { id: "IA1", type: "inbound-rtp", kind: "audio", mid: "a1", bytesReceived: 7, timestamp: 50 },
    ]);
    publisher!.report = entries([
      { id: "OA", type: "outbound-rtp", kind: "audio", mid: "0", bytesSent: 500, timestamp: 60 },
      { id: "OV", type: "outbound-rtp", kind: "video", mid: "1", bytesSent: 5000, framesEncoded: 40 },
    ]);
    const stats = await media.stats();
    expect(Object.keys(stats)).toEqual(["bob", "cy"]);
    expect(stats.bob).toMatchObject({
      videoFramesDecoded: 30,
      screenFramesDecoded: 5,
      audioBytesReceived: 100,
      videoBytesReceived: 900,
      packetsReceived: 10,
      audioBytesSent: 500,
      videoBytesSent: 5000,
      cameraOut: { frames: 40, bytes: 5000 },
      screenOut: null,
      connection: "new",
      iceRestarts: 0,
      rebuilds: 0,
    });
    expect(stats.cy).toMatchObject({
      videoFramesDecoded: 0,
      audioBytesReceived: 7,
      audioBytesSent: 500,
      timestamp: 60,
    });
  });

  it("hears a member's level on its own audio m-lines", async () => {
    const { media, made } = sfu();
    media.start();
    void media.receive(offer(BOB_AND_CY));
    await settleNow();
    const subscriber = made[1]!;
    const heard = (level: number) =>
      [{ timestamp: Date.now(), audioLevel: level }] as RTCRtpSynchronizationSource[];
    subscriber.transceivers.find((t) => t.mid === "a0")!.receiver.sources = heard(0.5);
    subscriber.transceivers.find((t) => t.mid === "a1")!.receiver.sources = heard(0.9);
    expect(media.audioLevel("bob")).toBe(0.5);
    expect(media.audioLevel("cy")).toBe(0.9);
    expect(media.audioLevel("nobody")).toBe(0);
  });
});
