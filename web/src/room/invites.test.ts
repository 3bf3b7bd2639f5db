import { describe, expect, it } from "vitest";
import { inviteExpired, inviteFor, inviteInFragment, inviteRole } from "./invites";

class MemoryStorage {
  readonly items = new Map<string, string>();
  getItem(key: string): string | null {
    return this.items.get(key) ?? null;
  }
  setItem(key: string, value: string): void {
    this.items.set(key, value);
  }
}

function token(body: object): string {
  const payload = btoa(JSON.stringify(body)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  return `${payload}.signature`;
}

describe("invitations", () => {
  it("reads the invitation from the fragment only", () => {
    expect(inviteInFragment("#invite=abc.def")).toBe("abc.def");
    expect(inviteInFragment("#other=1&invite=abc.def")).toBe("abc.def");
    expect(inviteInFragment("")).toBeNull();
    expect(inviteInFragment("#invite=")).toBeNull();
    expect(inviteInFragment(`#invite=${"x".repeat(513)}`)).toBeNull();
  });

  it("keeps a fresh invitation for the tab and takes it out of the address bar", () => {
    const storage = new MemoryStorage();
    const replaced: string[] = [];
    const where = { hash: "#invite=tok.en", href: "https://h/r/room1#invite=tok.en" };
    expect(inviteFor("room1", storage, where, (url) => replaced.push(url))).toBe("tok.en");
    expect(replaced).toEqual(["https://h/r/room1"]);
    // A reload without the fragment still has it; another room does not.
    const plain = { hash: "", href: "https://h/r/room1" };
    expect(inviteFor("room1", storage, plain, (url) => replaced.push(url))).toBe("tok.en");
    expect(inviteFor("room2", storage, plain, (url) => replaced.push(url))).toBeNull();
    expect(replaced).toHaveLength(1);
  });

  it("reads the role an invitation says until it expires, and nothing from garbage", () => {
    expect(inviteRole(token({ r: "room", o: "host", x: 100 }), 99_000)).toBe("host");
    expect(inviteRole(token({ r: "room", o: "guest", x: 100 }), 99_000)).toBe("guest");
    expect(inviteRole(token({ r: "room", o: "host", x: 100 }), 100_000)).toBeNull();
    expect(inviteExpired(token({ r: "room", o: "host", x: 100 }), 100_000)).toBe(true);
    expect(inviteExpired(token({ r: "room", o: "host", x: 100 }), 99_000)).toBe(false);
    expect(inviteRole(token({ o: "admin", x: 100 }), 0)).toBeNull();
    expect(inviteRole(token({ o: "host" }), 0)).toBeNull();
    expect(inviteRole("%%%.x")).toBeNull();
    expect(inviteRole(null)).toBeNull();
    expect(inviteExpired(null)).toBe(false);
  });
});
