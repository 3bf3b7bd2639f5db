import { describe, expect, it, vi } from "vitest";
import { SignalingClient } from "../signaling/client";
import { FakeNetwork, SocketFarm, noJitter, welcome } from "../test/signalingFakes";
import { EARLY_LIFETIME_MS, EarlyGreeting } from "./early";

/** An EarlyGreeting whose connections are real SignalingClients on fake sockets. */
function setUp() {
  const farm = new SocketFarm();
  const clients: SignalingClient[] = [];
  const early = new EarlyGreeting(async (name) => {
    const client = new SignalingClient("wss://x/ws", farm.factory, {
      random: noJitter,
      network: new FakeNetwork(),
    });
    clients.push(client);
    await client.connect(name);
    return client;
  });
  /** Let the newest socket open and answer its hello with a welcome under `name`. */
  const greet = async (name: string) => {
    farm.last.open();
    farm.last.receive(welcome({ name }));
    await settle();
  };
  return { farm, clients, early, greet };
}

const settle = () => new Promise<void>((resolve) => setTimeout(resolve, 0));

describe("EarlyGreeting (the pre-join page's connection)", () => {
  it("hands the greeted connection to Join, open, and forgets it", async () => {
    const { farm, clients, early, greet } = setUp();
    early.prepare("ann", "");
    await greet("ann");
    const taken = await early.take("ann", "");
    expect(taken).toBe(clients[0]);
    expect(taken?.state).toBe("open");
    expect(farm.last.closedWith).toBeNull();
    expect(await early.take("ann", "")).toBeNull(); // handed over once
  });

  it("waits for a connection still opening when Join is pressed, and keeps it", async () => {
    const { farm, early, greet } = setUp();
    early.prepare("ann");
    const taking = early.take("ann");
    await greet("ann");
    const taken = await taking;
    expect(taken?.state).toBe("open");
    expect(farm.last.closedWith).toBeNull();
  });

  it("opens one connection per name however often the same name is prepared", async () => {
    const { farm, early, greet } = setUp();
    early.prepare("ann");
    early.prepare("ann");
    await greet("ann");
    early.prepare("ann");
    expect(farm.sockets).toHaveLength(1);
  });

  it("closes the old connection when the name or the account changes", async () => {
    const { farm, early, greet } = setUp();
    early.prepare("ann");
    await greet("ann");
    early.prepare("anna");
    await settle();
    expect(farm.sockets[0]?.closedWith).toBe(1000);
    await greet("anna");
    early.prepare("anna", "account-1"); // signed in since: the guest connection is not theirs
    await settle();
    expect(farm.sockets[1]?.closedWith).toBe(1000);
    expect(farm.sockets).toHaveLength(3);
  });

  it("gives nothing, and closes what it held, for another name or account", async () => {
    const { farm, early, greet } = setUp();
    early.prepare("ann");
    await greet("ann");
    expect(await early.take("bob")).toBeNull();
    expect(farm.last.closedWith).toBe(1000);

    early.prepare("ann");
    await greet("ann");
    expect(await early.take("ann", "account-1")).toBeNull();
    expect(farm.last.closedWith).toBe(1000);
  });

  it("closes a connection dropped while it was still opening, once it opens", async () => {
    const { farm, early, greet } = setUp();
    early.prepare("ann");
    early.drop(); // the pre-join page was left
    await greet("ann");
    expect(farm.last.closedWith).toBe(1000);
    expect(await early.take("ann")).toBeNull();
  });

  it("lets go of a connection the server closed (its idle deadline) instead of resuming it", async () => {
    const { farm, clients, early, greet } = setUp();
    early.prepare("ann");
    await greet("ann");
    farm.last.drop(4000); // "no room joined in time"
    await settle();
    expect(clients[0]?.state).toBe("closed");
    expect(farm.sockets).toHaveLength(1); // no reconnect attempt
    expect(await early.take("ann")).toBeNull();
  });

  it("a refused hello is no error: Join simply opens its own", async () => {
    const { farm, early } = setUp();
    early.prepare("ann");
    farm.last.open();
    farm.last.receive({ type: "error", code: "invalid_name", message: "no" });
    await settle();
    expect(await early.take("ann")).toBeNull();
  });

  it("a connection handed to Join is no longer closed by a later loss", async () => {
    const { farm, early, greet } = setUp();
    early.prepare("ann");
    await greet("ann");
    const taken = await early.take("ann");
    farm.last.drop(1006);
    await settle();
    expect(taken?.state).toBe("reconnecting"); // the room's to resume, not closed
  });

  it("lets go of a greeted connection kept longer than its lifetime, well inside the server's deadline", async () => {
    vi.useFakeTimers();
    try {
      const { farm, clients, early } = setUp();
      early.prepare("ann");
      farm.last.open();
      farm.last.receive(welcome({ name: "ann" }));
      for (let t = 0; t < EARLY_LIFETIME_MS - 1_000; t += 1_000) {
        farm.last.receive({ type: "ping" }); // a live server, not a silent one
        await vi.advanceTimersByTimeAsync(1_000);
      }
      await vi.advanceTimersByTimeAsync(999);
      expect(clients[0]?.state).toBe("open");
      await vi.advanceTimersByTimeAsync(1);
      expect(clients[0]?.state).toBe("closed");
      expect(await early.take("ann")).toBeNull();
    } finally {
      vi.useRealTimers();
    }
  });
});
