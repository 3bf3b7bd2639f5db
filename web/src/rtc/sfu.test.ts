import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { ServerOf } from "../protocol";
import type { SfuStream } from "../protocol/generated";
import { FakePeerConnection, settleNow } from "../test/fakes";
import { LAYER_DEBOUNCE_MS } from "./layers";
import {
  CAMERA_LAYERS,
  PUBLISH_ANSWER_MS,
  PUBLISH_RETRY_FIRST_MS,
  PUBLISH_RETRY_MAX_MS,
  SfuMedia,
  SUBSCRIBE_RETRY_FIRST_MS,
  SUBSCRIBE_TRIES,
  type SfuSignal,
} from "./sfu";

class FakeStream {
  constructor(readonly tracks: unknown[]) {}
}

const track = (kind: string, id = kind) => ({ kind, id }) as unknown as MediaStreamTrack;
const trackIdOf = (value: unknown) => (value as MediaStreamTrack | null)?.id ?? null;

/**
 * An SfuMedia over fake connections; `sent` also notes the subscriber's offer when an answer
 * went, and `at` the fake time each message went. `refuseSendEncodings`: a browser whose
 * addTransceiver cannot simulcast; `signaling.open`: whether the signaling socket is open.
 */
function sfu({ refuseSendEncodings = false } = {}) {
  const signaling = { open: true };
  const made: FakePeerConnection[] = [];
  const sent: SfuSignal[] = [];
  const at: number[] = [];
  const answeredOffers: (string | undefined)[] = [];
  const media = new SfuMedia(
    (message) => {
      sent.push(message);
      at.push(Date.now());
      if (message.type === "sfu_subscribe") answeredOffers.push(made[1]?.remoteDescription?.sdp);
    },
    { iceServers: [], bundlePolicy: "max-bundle" },
    (config) => {
      const pc = new FakePeerConnection(`pc${made.length}`);
      pc.configuration = config;
      pc.refuseSendEncodings = refuseSendEncodings;
      made.push(pc);
      return pc as unknown as RTCPeerConnection;
    },
    {
      streamFactory: (tracks) => new FakeStream(tracks) as unknown as MediaStream,
      signalingOpen: () => signaling.open,
    },
  );
  return { media, made, sent, at, answeredOffers, signaling };
}

type Sent<T extends SfuSignal["type"]> = Extract<SfuSignal, { type: T }>;
const ofType = <T extends SfuSignal["type"]>(sent: SfuSignal[], type: T): Sent<T>[] =>
  sent.filter((m): m is Sent<T> => m.type === type);

/** The server's answer, applied (the fake connection settles on fake timers). */
async function answer(media: SfuMedia, sdp = "sfu answer"): Promise<void> {
  void media.receive({ type: "sfu_answer", description: { type: "answer", sdp } });
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

const SILENT = { mic: false, camera: false, screen: false };
/** Another member of the room, sending their microphone unless told `silent`. */
const member = (id: string, silent = false) => ({ id, media: silent ? SILENT : { ...SILENT, mic: true } });

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
      const code = ["sfu_unavailable", "not_sfu_room", "rate_limited"][round % 3]!;
      expect(media.refused(code, "sfu-publish")).toBe(true);
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

describe("SfuMedia publisher: answers that go astray", () => {
  it("drops the answers still due to publishers a start closed: they are not the new one's", async () => {
    vi.spyOn(console, "warn").mockImplementation(() => {});
    const { media, made, sent } = sfu();
    media.start();
    await settleNow();
    media.start(); // room_media while the first offer is out
    await settleNow();
    media.start(); // and again, while both are
    await settleNow();
    const publisher = made[2]!;
    expect(ofType(sent, "sfu_publish")).toHaveLength(3);
    expect(media.refused("sfu_unavailable", "sfu-publish")).toBe(true); // the first one's
    await answer(media, "answer to the second offer");
    expect(publisher.remoteDescription).toBeNull();
    expect(publisher.signalingState).toBe("have-local-offer");
    expect(media.state).not.toBe("retrying");
    expect(media.trail.filter((step) => step === "answer to a closed publisher dropped")).toHaveLength(2);
    await vi.advanceTimersByTimeAsync(PUBLISH_RETRY_FIRST_MS * 2);
    expect(ofType(sent, "sfu_publish")).toHaveLength(3); // no retry for the first one's refusal
    await answer(media, "answer to the third offer");
    expect(publisher.remoteDescription?.sdp).toBe("answer to the third offer");
    expect(publisher.signalingState).toBe("stable");
  });

  it("publishes again when neither answer nor refusal came in 15 s, and counts the lost one", async () => {
    const { media, made, sent } = sfu();
    media.start();
    await settleNow();
    const publishes = () => ofType(sent, "sfu_publish").length;
    expect(PUBLISH_ANSWER_MS).toBe(15_000);
    await vi.advanceTimersByTimeAsync(PUBLISH_ANSWER_MS - 200); // settleNow took 100 ms
    expect(publishes()).toBe(1);
    await vi.advanceTimersByTimeAsync(200);
    await settleNow();
    expect(publishes()).toBe(2);
    expect(media.trail).toContain(`no answer after ${PUBLISH_ANSWER_MS} ms: publish again`);
    await answer(media);
    expect(made[0]?.signalingState).toBe("stable");
    await vi.advanceTimersByTimeAsync(60_000);
    expect(publishes()).toBe(2); // answered: nothing more
    // The first offer's answer may come yet: a start does not take it for the new offer's.
    media.start();
    await settleNow();
    await answer(media, "late answer to the first offer");
    expect(made[1]?.remoteDescription).toBeNull();
    await answer(media);
    expect(made[1]?.remoteDescription?.sdp).toBe("sfu answer");
  });

  it("does not publish again for want of an answer while the signaling socket is away", async () => {
    const { media, sent, signaling } = sfu();
    media.start();
    await settleNow();
    signaling.open = false;
    await vi.advanceTimersByTimeAsync(60_000);
    expect(ofType(sent, "sfu_publish")).toHaveLength(1); // it would only queue up
    signaling.open = true;
    await vi.advanceTimersByTimeAsync(PUBLISH_ANSWER_MS);
    await settleNow();
    expect(ofType(sent, "sfu_publish")).toHaveLength(2);
  });

  it("while the SFU refuses, says it retries, asks no restart, and keeps its delays across a start", async () => {
    vi.spyOn(console, "warn").mockImplementation(() => {});
    const { media, made, sent } = sfu();
    media.setMembers([member("bob")]);
    media.start();
    await settleNow();
    let refused = 0;
    const refuseEach = () => {
      for (; refused < ofType(sent, "sfu_publish").length; refused++)
        media.refused("sfu_unavailable", "sfu-publish");
    };
    for (let second = 0; second < 60; second++) {
      refuseEach();
      await vi.advanceTimersByTimeAsync(1_000);
    }
    refuseEach();
    expect(ofType(sent, "sfu_restart")).toEqual([]);
    expect(media.state).toBe("retrying");
    media.start(); // room_media: the SFU came back, but refuses still
    await settleNow();
    refuseEach();
    expect(media.state).toBe("retrying");
    const publishes = ofType(sent, "sfu_publish").length;
    await vi.advanceTimersByTimeAsync(PUBLISH_RETRY_MAX_MS - 100);
    expect(ofType(sent, "sfu_publish")).toHaveLength(publishes); // not after 1 s: the delays go on
    await vi.advanceTimersByTimeAsync(100);
    await settleNow();
    expect(ofType(sent, "sfu_publish")).toHaveLength(publishes + 1);
    await answer(media);
    expect(media.state).toBe("restoring"); // no longer retrying: the SFU answers again
    expect(made).toHaveLength(2);
    expect(ofType(sent, "sfu_restart")).toEqual([]);
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

describe("SfuMedia subscriber: refusals", () => {
  it("sends a refused answer again after 1 s, 2 s and 4 s, then leaves it to the watchdog", async () => {
    vi.spyOn(console, "warn").mockImplementation(() => {});
    const { media, made, sent } = sfu();
    media.start();
    await settleNow();
    await answer(media);
    made[0]?.setIceState("connected");
    void media.receive(offer(BOB_AND_CY));
    await settleNow();
    const subscribes = () => ofType(sent, "sfu_subscribe");
    const first = subscribes()[0]!;
    expect([SUBSCRIBE_RETRY_FIRST_MS, SUBSCRIBE_TRIES]).toEqual([1_000, 3]);
    for (const delay of [1_000, 2_000, 4_000]) {
      const before = subscribes().length;
      expect(media.refused("sfu_unavailable", "sfu-subscribe")).toBe(true);
      await vi.advanceTimersByTimeAsync(delay - 1);
      expect(subscribes()).toHaveLength(before);
      await vi.advanceTimersByTimeAsync(1);
      expect(subscribes()).toHaveLength(before + 1);
      expect(subscribes().at(-1)).toEqual(first); // the same answer to the same offer
    }
    media.refused("sfu_unavailable", "sfu-subscribe");
    await vi.advanceTimersByTimeAsync(9_999); // the subscriber's deadline, from the last answer
    expect(subscribes()).toHaveLength(4);
    expect(ofType(sent, "sfu_restart")).toEqual([]);
    expect(media.trail).toContain("subscribe refused: left to the watchdog");
    await vi.advanceTimersByTimeAsync(1);
    expect(ofType(sent, "sfu_restart")).toHaveLength(1);
  });

  it("answers a new offer instead, and sends nothing again for other refusals", async () => {
    vi.spyOn(console, "warn").mockImplementation(() => {});
    const { media, sent } = sfu();
    media.start();
    void media.receive(offer(BOB_AND_CY));
    await settleNow();
    media.refused("not_sfu_room", "sfu-subscribe");
    await vi.advanceTimersByTimeAsync(10_000);
    expect(ofType(sent, "sfu_subscribe")).toHaveLength(1);
    media.refused("sfu_unavailable", "sfu-subscribe");
    void media.receive(
      offer(
        [stream("a0", "bob", "audio")],
        [
          ["video", "v0"],
          ["audio", "a1"],
        ],
      ),
    );
    await vi.advanceTimersByTimeAsync(5_000);
    expect(ofType(sent, "sfu_subscribe")).toHaveLength(2); // the new offer's answer, once
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

describe("SfuMedia simulcast", () => {
  it("sends the camera in two layers, low first, and the screen share in one", async () => {
    const { media, made } = sfu();
    media.setTrack("video", track("video", "cam1"));
    media.start();
    await settleNow();
    await answer(media);
    const camera = made[0]!.transceivers[1]!;
    expect(camera.sender.encodings).toEqual([
      { active: true, rid: "l", scaleResolutionDownBy: 2, maxBitrate: 400_000 },
      { active: true, rid: "h", scaleResolutionDownBy: 1, maxBitrate: 1_500_000 },
    ]);
    expect(CAMERA_LAYERS.map((e) => e.rid)).toEqual(["l", "h"]);
    media.setTrack("screen", track("video", "screen1"));
    await settleNow();
    expect(made[0]?.transceivers[2]?.sender.encodings).toEqual([{ active: true }]);
  });

  it("switches cameras and turns the camera off on all layers at once, without renegotiating", async () => {
    const { media, made, sent } = sfu();
    media.setTrack("video", track("video", "cam1"));
    media.start();
    await settleNow();
    await answer(media);
    const camera = made[0]!.transceivers[1]!;
    media.setSending("video", false);
    await settleNow();
    expect(camera.sender.track).toBeNull();
    media.setTrack("video", track("video", "cam2"));
    media.setSending("video", true);
    await settleNow();
    expect(trackIdOf(camera.sender.track)).toBe("cam2");
    expect(camera.sender.encodings.map((e) => [e.rid, e.active])).toEqual([
      ["l", true],
      ["h", true],
    ]);
    expect(ofType(sent, "sfu_publish")).toHaveLength(1);
  });

  it("sends one encoding where the browser cannot simulcast", async () => {
    const warn = vi.spyOn(console, "warn").mockImplementation(() => {});
    const { media, made, sent } = sfu({ refuseSendEncodings: true });
    media.setTrack("video", track("video", "cam1"));
    media.start();
    await settleNow();
    const pc = made[0]!;
    expect(pc.transceivers.map((t) => [t.direction, t.sender.encodings.length])).toEqual([
      ["sendonly", 1],
      ["sendonly", 1],
    ]);
    expect(trackIdOf(pc.transceivers[1]?.sender.track)).toBe("cam1");
    expect(ofType(sent, "sfu_publish")).toHaveLength(1);
    expect(warn).toHaveBeenCalled();
  });
});

describe("SfuMedia layers", () => {
  const qualities = (sent: SfuSignal[]) => ofType(sent, "sfu_quality").map((m) => `${m.member} ${m.quality}`);

  it("asks the SFU for the layer each member's tile needs: on change only, and only while on the SFU", async () => {
    const { media, sent } = sfu();
    media.setMembers([member("bob"), member("cy")]);
    media.showVideo("bob", 640);
    media.showVideo("cy", 150);
    await vi.advanceTimersByTimeAsync(5_000);
    expect(qualities(sent)).toEqual([]); // a mesh room: no SFU to tell
    media.start();
    await vi.advanceTimersByTimeAsync(LAYER_DEBOUNCE_MS);
    expect(ofType(sent, "sfu_quality")).toEqual([
      { type: "sfu_quality", member: "cy", quality: "low", ref: "sfu-quality:cy" },
    ]);
    media.showVideo("bob", 300);
    media.showVideo("cy", 120);
    await vi.advanceTimersByTimeAsync(LAYER_DEBOUNCE_MS);
    expect(qualities(sent)).toEqual(["cy low", "bob low"]);
    media.forget("cy"); // cy left
    media.setMembers([member("bob")]);
    media.showVideo("cy", null);
    await vi.advanceTimersByTimeAsync(LAYER_DEBOUNCE_MS);
    media.start(); // the SFU restarted: it sends everyone's high layer again
    await vi.advanceTimersByTimeAsync(LAYER_DEBOUNCE_MS);
    expect(qualities(sent)).toEqual(["cy low", "bob low", "bob low"]);
    media.close();
    media.showVideo("bob", 100);
    await vi.advanceTimersByTimeAsync(5_000);
    expect(qualities(sent)).toHaveLength(3);
  });

  it("takes a refusal of a layer request as its own, and asks again with the next change", async () => {
    vi.spyOn(console, "warn").mockImplementation(() => {});
    const { media, sent } = sfu();
    media.setMembers([member("bob")]);
    media.showVideo("bob", 150);
    media.start();
    await vi.advanceTimersByTimeAsync(LAYER_DEBOUNCE_MS);
    expect(media.refused("sfu_unavailable", "sfu-quality:bob")).toBe(true);
    await vi.advanceTimersByTimeAsync(5_000);
    expect(qualities(sent)).toEqual(["bob low"]); // not at once
    media.showVideo("bob", 160); // still low, but the SFU may not know
    await vi.advanceTimersByTimeAsync(LAYER_DEBOUNCE_MS);
    expect(qualities(sent)).toEqual(["bob low", "bob low"]);
    expect(media.refused("no_such_member", "sfu-quality:bob")).toBe(true);
    expect(ofType(sent, "sfu_publish")).toHaveLength(1);
  });
});

describe("SfuMedia state", () => {
  it("is connecting, slow after 3 s (listeners are woken up), and connected once media flows", async () => {
    const { media, made } = sfu();
    expect(media.state).toBe("off");
    const changes = vi.fn();
    media.onChange(changes);
    media.start();
    await settleNow();
    await answer(media);
    expect(media.state).toBe("connecting");
    made[0]?.setIceState("checking");
    changes.mockClear();
    await vi.advanceTimersByTimeAsync(3_000);
    expect(changes).toHaveBeenCalled();
    expect(media.state).toBe("slow");
    made[0]?.setIceState("connected");
    expect(media.state).toBe("connected");
    void media.receive(offer(BOB_AND_CY));
    await settleNow();
    expect(media.state).toBe("connecting"); // the subscriber has a grace of its own
    await vi.advanceTimersByTimeAsync(3_000);
    expect(media.state).toBe("slow");
    made[1]?.setIceState("connected");
    expect(media.state).toBe("connected");
    expect(vi.getTimerCount()).toBe(0); // nothing left to wake up for
  });

  it("says when a connection is interrupted, reconnects when it failed, and says when it is back", async () => {
    const { media, made, sent } = sfu();
    media.start();
    void media.receive(offer(BOB_AND_CY));
    await settleNow();
    made[0]?.setIceState("connected");
    made[1]?.setIceState("connected");
    made[1]?.setIceState("disconnected");
    expect(media.state).toBe("interrupted");
    made[1]?.setConnectionState("failed");
    expect(media.state).toBe("reconnecting"); // a new place on the SFU is asked for (below)
    expect(ofType(sent, "sfu_restart")).toHaveLength(1);
    made[1]?.setIceState("connected");
    expect(media.state).toBe("connected");
  });

  it("says a refused offer is made again, until an answer applies", async () => {
    vi.spyOn(console, "warn").mockImplementation(() => {});
    const { media, made } = sfu();
    media.start();
    await settleNow();
    const changes = vi.fn();
    media.onChange(changes);
    media.refused("sfu_unavailable", "sfu-publish");
    expect(changes).toHaveBeenCalled();
    expect(media.state).toBe("retrying");
    await vi.advanceTimersByTimeAsync(PUBLISH_RETRY_FIRST_MS);
    await settleNow();
    expect(media.state).toBe("retrying"); // offered again, not answered yet
    await answer(media);
    made[0]?.setIceState("connected");
    expect(media.state).toBe("connected");
  });

  it("says the SFU restarted until both new connections carry media", async () => {
    const { media, made } = sfu();
    media.setMembers([member("bob"), member("cy")]);
    media.start();
    await settleNow();
    await answer(media);
    void media.receive(offer(BOB_AND_CY));
    await settleNow();
    made[0]?.setIceState("connected");
    made[1]?.setIceState("connected");
    expect(media.state).toBe("connected");
    media.start(); // a second room_media: the SFU lost its state
    expect(media.state).toBe("restoring");
    await settleNow();
    await answer(media);
    made[2]?.setIceState("connected");
    expect(media.state).toBe("restoring"); // the others' media is not offered yet
    void media.receive(offer(BOB_AND_CY));
    await settleNow();
    expect(media.state).toBe("restoring");
    made[3]?.setIceState("connected");
    expect(media.state).toBe("connected");
    made[3]?.setIceState("disconnected"); // restored: trouble later is not the restart's
    expect(media.state).toBe("interrupted");
    media.close();
    expect(media.state).toBe("off");
  });
});

describe("SfuMedia watchdog", () => {
  const restarts = (sent: SfuSignal[]) => ofType(sent, "sfu_restart");

  /**
   * Started, its publisher answered and connected, and bob's and cy's media offered;
   * `stalled`: the subscriber's answer gathers nothing (Chromium's stall).
   */
  async function receiving({ stalled = false } = {}) {
    const setup = sfu();
    const { media, made } = setup;
    media.setMembers([member("bob"), member("cy")]);
    media.start();
    await settleNow();
    await answer(media);
    made[0]?.setIceState("connected");
    void media.receive(offer(BOB_AND_CY));
    if (stalled) {
      await vi.advanceTimersByTimeAsync(0); // the subscriber is made by the offer
      made[1]!.stallGatherings = 1;
    }
    await settleNow();
    return setup;
  }

  it("asks for a new place 4 s after its answer when the subscriber gathered no candidate", async () => {
    const { media, sent, at } = await receiving({ stalled: true });
    const answeredAt = at[sent.findIndex((m) => m.type === "sfu_subscribe")]!;
    expect(ofType(sent, "sfu_candidate").filter((m) => m.pc === "subscriber")).toEqual([]);
    await vi.advanceTimersByTimeAsync(answeredAt + 3_999 - Date.now());
    expect(restarts(sent)).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    expect(restarts(sent)).toHaveLength(1);
    expect(media.trail).toContain(
      "restart asked (subscriber gathered no candidate in 4000 ms); the next after 10000 ms",
    );
  });

  it("asks for a new place when the subscriber is still new 10 s after its answer, and is answered", async () => {
    const { media, made, sent, at } = await receiving();
    const answeredAt = at[sent.findIndex((m) => m.type === "sfu_subscribe")]!;
    // Chromium's stuck subscriber: gathering for ever, and its connectionState stays "new".
    await vi.advanceTimersByTimeAsync(answeredAt + 9_999 - Date.now());
    expect(restarts(sent)).toEqual([]);
    expect(media.state).toBe("slow");
    await vi.advanceTimersByTimeAsync(1);
    expect(restarts(sent)).toEqual([{ type: "sfu_restart", ref: "sfu-restart" }]);
    expect(media.state).toBe("reconnecting");
    expect(media.trail).toContain("restart asked (subscriber new after 10000 ms); the next after 10000 ms");
    media.start(); // the server's room_media
    await settleNow();
    expect(made.slice(0, 2).map((pc) => pc.closed)).toEqual([true, true]);
    expect(media.state).toBe("reconnecting"); // until the new connections carry media
    made[2]?.setIceState("connected");
    void media.receive(offer(BOB_AND_CY));
    await settleNow();
    made[3]?.setIceState("connected");
    expect(media.state).toBe("connected");
    await vi.advanceTimersByTimeAsync(120_000);
    expect(restarts(sent)).toHaveLength(1);
  });

  it("asks nothing for a member alone in the room, nor with others who send nothing", async () => {
    const { media, made, sent } = sfu();
    media.start();
    await settleNow();
    await answer(media);
    made[0]?.setIceState("connected");
    await vi.advanceTimersByTimeAsync(120_000);
    media.setMembers([member("bob", true)]); // bob came, with everything off: nothing to offer
    await vi.advanceTimersByTimeAsync(120_000);
    expect(restarts(sent)).toEqual([]);
    expect(made).toHaveLength(1);
    expect(media.state).toBe("connected");
  });

  it("expects the SFU's offer once others send media: slow after 3 s, and a restart after 10 s", async () => {
    const { media, made, sent } = sfu();
    media.setMembers([member("bob", true)]);
    media.start();
    await settleNow();
    await answer(media);
    made[0]?.setIceState("connected");
    expect(media.state).toBe("connected");
    const changes = vi.fn();
    media.onChange(changes);
    media.setMembers([member("bob")]); // bob turns his microphone on: the SFU offers it
    expect(media.state).toBe("connecting");
    await vi.advanceTimersByTimeAsync(3_000);
    expect(changes).toHaveBeenCalled();
    expect(media.state).toBe("slow");
    await vi.advanceTimersByTimeAsync(6_999);
    expect(restarts(sent)).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    expect(restarts(sent)).toHaveLength(1);
    expect(media.state).toBe("reconnecting");
    expect(media.trail).toContain("restart asked (no offer after 10000 ms); the next after 10000 ms");
  });

  it("expects no offer while the SFU has not answered this side", async () => {
    vi.spyOn(console, "warn").mockImplementation(() => {});
    const { media, sent } = sfu();
    media.setMembers([member("bob")]);
    media.start();
    await settleNow();
    media.refused("sfu_unavailable", "sfu-publish"); // the SFU is down: it offers nothing either
    await vi.advanceTimersByTimeAsync(PUBLISH_RETRY_FIRST_MS / 2);
    expect(media.state).toBe("retrying");
    await vi.advanceTimersByTimeAsync(PUBLISH_ANSWER_MS); // the retry is not answered in time
    expect(restarts(sent)).toEqual([]);
  });

  it("asks no restart while the signaling socket is away, and one once it is back", async () => {
    const { media, made, sent, signaling } = await receiving();
    made[1]?.setIceState("connected");
    signaling.open = false;
    made[1]?.setConnectionState("failed");
    await vi.advanceTimersByTimeAsync(120_000);
    expect(restarts(sent)).toEqual([]);
    signaling.open = true;
    media.signalingResumed();
    expect(restarts(sent)).toHaveLength(1);
    media.signalingResumed();
    expect(restarts(sent)).toHaveLength(1);
  });

  it("asks when a connection stays disconnected 5 s, not when it is back within 4 s", async () => {
    const { media, made, sent } = await receiving();
    made[1]?.setIceState("connected");
    made[1]?.setIceState("disconnected");
    await vi.advanceTimersByTimeAsync(4_000);
    made[1]?.setIceState("connected");
    await vi.advanceTimersByTimeAsync(60_000);
    expect(restarts(sent)).toEqual([]);
    made[0]?.setIceState("disconnected");
    await vi.advanceTimersByTimeAsync(4_999);
    expect([restarts(sent).length, media.state]).toEqual([0, "interrupted"]);
    await vi.advanceTimersByTimeAsync(1);
    expect([restarts(sent).length, media.state]).toEqual([1, "reconnecting"]);
  });

  it("asks again while nothing answers: after 10 s, 20 s, 40 s, then every 60 s", async () => {
    const { media, sent, at } = sfu();
    media.start();
    await settleNow();
    await answer(media); // the publisher never connects, and no room_media comes
    await vi.advanceTimersByTimeAsync(250_000);
    const times = at.filter((_, i) => sent[i]?.type === "sfu_restart");
    expect(times.slice(1).map((t, i) => t - times[i]!)).toEqual([10_000, 20_000, 40_000, 60_000, 60_000]);
  });

  it("asks nothing in a mesh room, nor once closed", async () => {
    const { media, sent } = sfu();
    await vi.advanceTimersByTimeAsync(120_000); // a mesh room: never started
    media.start();
    await settleNow();
    await answer(media);
    void media.receive(offer(BOB_AND_CY));
    await settleNow();
    media.close();
    await vi.advanceTimersByTimeAsync(120_000);
    expect(restarts(sent)).toEqual([]);
    media.start();
    await settleNow();
    await answer(media);
    await vi.advanceTimersByTimeAsync(10_000);
    expect(restarts(sent)).toHaveLength(1);
    media.close(); // while the answer is awaited
    await vi.advanceTimersByTimeAsync(120_000);
    expect(restarts(sent)).toHaveLength(1);
    expect(media.state).toBe("off");
  });

  it("asks again after a refusal that may pass, and stops at not_sfu_room", async () => {
    const warn = vi.spyOn(console, "warn").mockImplementation(() => {});
    const { media, made, sent } = await receiving();
    made[1]?.setIceState("connected");
    made[1]?.setConnectionState("failed");
    expect(restarts(sent)).toHaveLength(1);
    expect(media.refused("rate_limited", "sfu-restart")).toBe(true);
    expect(warn).toHaveBeenCalledWith("salon sfu: sfu-restart refused (rate_limited)");
    expect(media.state).toBe("reconnecting");
    await vi.advanceTimersByTimeAsync(10_000);
    expect(restarts(sent)).toHaveLength(2);
    expect(media.refused("not_sfu_room", "sfu-restart")).toBe(true);
    expect(media.state).toBe("failed"); // no more asking: the connection's own state
    await vi.advanceTimersByTimeAsync(300_000);
    expect(restarts(sent)).toHaveLength(2);
    expect(ofType(sent, "sfu_publish")).toHaveLength(1); // not the publisher's refusal
    expect(media.trail).toContain("restart refused (not_sfu_room): no more");
  });
});
