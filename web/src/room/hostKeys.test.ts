import { describe, expect, it } from "vitest";
import { MAX_HOST_KEYS, hostKeyFor, rememberHostKey, type KeyStorage } from "./hostKeys";

class MemoryStorage implements KeyStorage {
  readonly items = new Map<string, string>();
  getItem(key: string): string | null {
    return this.items.get(key) ?? null;
  }
  setItem(key: string, value: string): void {
    this.items.set(key, value);
  }
}

describe("host keys", () => {
  it("keeps a room's key and gives it back for that room only", () => {
    const storage = new MemoryStorage();
    rememberHostKey("room1", "key1", storage, 1);
    expect(hostKeyFor("room1", storage)).toBe("key1");
    expect(hostKeyFor("room2", storage)).toBeNull();
  });

  it("forgets the oldest rooms past the limit", () => {
    const storage = new MemoryStorage();
    for (let i = 0; i < MAX_HOST_KEYS + 2; i++) rememberHostKey(`r${i}`, `k${i}`, storage, i);
    expect(hostKeyFor("r0", storage)).toBeNull();
    expect(hostKeyFor("r1", storage)).toBeNull();
    expect(hostKeyFor("r2", storage)).toBe("k2");
    expect(hostKeyFor(`r${MAX_HOST_KEYS + 1}`, storage)).toBe(`k${MAX_HOST_KEYS + 1}`);
  });

  it("survives odd room ids and broken storage", () => {
    const storage = new MemoryStorage();
    rememberHostKey("__proto__", "k", storage, 1);
    expect(hostKeyFor("__proto__", storage)).toBe("k");
    expect(hostKeyFor("constructor", storage)).toBeNull();
    storage.setItem("salon.hostKeys", "not json");
    expect(hostKeyFor("__proto__", storage)).toBeNull();
    expect(hostKeyFor("x", null)).toBeNull();
  });
});
