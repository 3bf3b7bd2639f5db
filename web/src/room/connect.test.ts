import { afterEach, describe, expect, it, vi } from "vitest";
import { createRoom, readRoomInfo, RoomNotCreated, roomNotCreatedText } from "./connect";

describe("createRoom", () => {
  afterEach(() => vi.unstubAllGlobals());

  const answering = (status: number, headers: Record<string, string>) =>
    vi.fn(async (url: string) =>
      url === "/api/v1/rooms"
        ? new Response(JSON.stringify({ detail: { code: "rate_limited" } }), { status, headers })
        : new Response("unexpected", { status: 404 }),
    );

  const page = () => vi.stubGlobal("document", { cookie: "salon_csrf=t" });

  it("says how long to wait when the server refuses with 429 and Retry-After", async () => {
    page();
    vi.stubGlobal("fetch", answering(429, { "Retry-After": "6" }));
    const error = await createRoom().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RoomNotCreated);
    expect(error).toMatchObject({ status: 429, retryAfterSeconds: 6 });
    expect(roomNotCreatedText(error)).toBe(
      "Too many meetings were created from your network just now: try again in 6 s.",
    );
  });

  it("tells a refusal from an unreachable server", async () => {
    page();
    vi.stubGlobal("fetch", answering(500, {}));
    const error = await createRoom().catch((e: unknown) => e);
    expect(roomNotCreatedText(error)).toContain("it answered 500");
    expect(roomNotCreatedText(new TypeError("Failed to fetch"))).toContain("Could not reach");
  });
});

describe("readRoomInfo", () => {
  it("reads what the server says of a guarded room, without a head count", () => {
    const info = readRoomInfo({
      id: "r1",
      exists: true,
      members: null,
      full: false,
      protected: true,
      locked: true,
      lobby: true,
      host: true,
    });
    expect(info).toEqual({
      id: "r1",
      exists: true,
      members: null,
      full: false,
      protected: true,
      locked: true,
      lobby: true,
      host: true,
    });
  });

  it("takes an older server's answer as an open room", () => {
    expect(readRoomInfo({ id: "r1", exists: true, members: 2, full: false })).toEqual({
      id: "r1",
      exists: true,
      members: 2,
      full: false,
      protected: false,
      locked: false,
      lobby: false,
      host: false,
    });
  });
});
