import { describe, expect, it } from "vitest";
import { routeOf } from "./routes";

describe("routeOf", () => {
  it("finds the app's pages, with or without a trailing slash", () => {
    expect(routeOf("/")).toEqual({ page: "home" });
    expect(routeOf("/call")).toEqual({ page: "call" });
    expect(routeOf("/login/")).toEqual({ page: "login" });
    expect(routeOf("/register")).toEqual({ page: "register" });
    expect(routeOf("/account")).toEqual({ page: "account" });
  });

  it("opens a room by a valid id, percent-decoded", () => {
    expect(routeOf("/r/x7Gq2LmP9aBc")).toEqual({ page: "room", roomId: "x7Gq2LmP9aBc" });
    expect(routeOf("/r/team_sync-2/")).toEqual({ page: "room", roomId: "team_sync-2" });
    expect(routeOf("/r/abc%2D")).toEqual({ page: "room", roomId: "abc-" });
    expect(routeOf(`/r/${"a".repeat(64)}`)).toEqual({ page: "room", roomId: "a".repeat(64) });
  });

  it("says a malformed room link is not a meeting (never the home page)", () => {
    for (const path of [
      "/r/%%%",
      "/r/b%C3%BCro", // "büro"
      `/r/${"a".repeat(65)}`,
      "/r/",
      "/r",
      "/r/a%20b",
      "/r/abc/def",
      "/r/%2E%2E",
    ]) {
      expect(routeOf(path), path).toEqual({ page: "not-a-meeting" });
    }
  });

  it("says any other path is not found", () => {
    for (const path of ["/nope", "/calls", "/r2/abc", "/account/x", "/index.html"]) {
      expect(routeOf(path), path).toEqual({ page: "not-found" });
    }
  });
});
