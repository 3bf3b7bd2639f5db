import { describe, expect, it } from "vitest";
import { iceUfragsOf, sessionIdOf } from "./sdp";

// The head of an offer as Chromium writes it, with a bundled second m-section.
const OFFER = [
  "v=0",
  "o=- 4611731400430051336 2 IN IP4 127.0.0.1",
  "s=-",
  "t=0 0",
  "a=group:BUNDLE 0 1",
  "m=audio 9 UDP/TLS/RTP/SAVPF 111",
  "a=ice-ufrag:xhs0",
  "a=ice-pwd:0123456789abcdefghijklmn",
  "m=video 9 UDP/TLS/RTP/SAVPF 96",
  "a=ice-ufrag:xhs0",
  "",
].join("\r\n");

describe("sdp", () => {
  it("reads the session id of the o= line", () => {
    expect(sessionIdOf(OFFER)).toBe("4611731400430051336");
    expect(sessionIdOf("v=0\r\ns=-\r\n")).toBeNull();
    expect(sessionIdOf(undefined)).toBeNull();
  });

  it("reads each ICE ufrag once", () => {
    expect(iceUfragsOf(OFFER)).toEqual(["xhs0"]);
    expect(iceUfragsOf(OFFER.replace(/xhs0\r\n$/, "other\r\n"))).toEqual(["xhs0", "other"]);
    expect(iceUfragsOf(undefined)).toEqual([]);
  });
});
