import { describe, expect, it } from "vitest";
import { readRoomInfo } from "./connect";

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
