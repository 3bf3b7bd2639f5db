import { describe, expect, it } from "vitest";
import { SignalingError } from "../signaling/client";
import { explainJoin } from "./explain";
import { departureText, ordinal } from "./words";

describe("wording", () => {
  it("numbers raised hands in words", () => {
    expect([1, 2, 3, 4, 11, 12, 13, 21, 22, 111].map(ordinal)).toEqual([
      "1st",
      "2nd",
      "3rd",
      "4th",
      "11th",
      "12th",
      "13th",
      "21st",
      "22nd",
      "111th",
    ]);
  });

  it("says who put this side out of the meeting", () => {
    expect(departureText({ reason: "removed", by: "Ann" }).title).toBe("Ann removed you from this meeting");
    expect(departureText({ reason: "ended", by: "Ann" }).title).toBe("Ann ended the meeting for everyone");
    // Another host called "Ann" is not this side: only the id says so.
    expect(departureText({ reason: "ended", by: "Ann", byMe: true }).title).toBe(
      "You ended the meeting for everyone",
    );
    expect(departureText({ reason: "ended", by: null }).title).toBe("The meeting ended");
    expect(departureText({ reason: "removed", by: null }).title).toBe("You were removed from this meeting");
    expect(departureText({ reason: "denied", by: null }).title).toBe("A host did not let you in");
  });

  it("tells a wrong password from a missing one, and a locked room", () => {
    const wrong = new SignalingError("wrong_password", "wrong password");
    expect(explainJoin(wrong, "Bob", "guess")).toBe("That password is not right.");
    expect(explainJoin(wrong, "Bob", "")).toBe("This meeting needs a password.");
    expect(explainJoin(new SignalingError("room_locked", "locked"), "Bob", "")).toBe(
      "This meeting is locked by its host.",
    );
  });
});
