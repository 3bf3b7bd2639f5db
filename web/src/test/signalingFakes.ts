/**
 * Fakes for reconnect tests: a socket factory that makes a new FakeSocket per connection
 * (as the browser makes a new WebSocket per attempt), the browser's `online` event, and
 * welcome messages.
 */
import type { NetworkEvents } from "../signaling/client";
import { SignalingClient } from "../signaling/client";
import { FakeSocket, LIMITS } from "./fakes";

/** Every socket the client opened, newest last. */
export class SocketFarm {
  readonly sockets: FakeSocket[] = [];
  readonly factory = (): FakeSocket => {
    const socket = new FakeSocket();
    this.sockets.push(socket);
    return socket;
  };

  get last(): FakeSocket {
    const socket = this.sockets.at(-1);
    if (socket === undefined) throw new Error("no socket was opened");
    return socket;
  }
}

/** The window's `online` event, fired by the test. */
export class FakeNetwork implements NetworkEvents {
  readonly listeners = new Set<() => void>();
  addEventListener(_type: "online", listener: () => void): void {
    this.listeners.add(listener);
  }
  removeEventListener(_type: "online", listener: () => void): void {
    this.listeners.delete(listener);
  }
  online(): void {
    for (const listener of [...this.listeners]) listener();
  }
}

/** The grace window these tests run with (docs/PROTOCOL.md default). */
export const RESUME_GRACE_SECONDS = 60;

export function welcome(overrides: Record<string, unknown> = {}) {
  return {
    type: "welcome",
    version: 1,
    id: "self",
    name: "me",
    ice_servers: [],
    limits: { ...LIMITS, resume_grace_seconds: RESUME_GRACE_SECONDS },
    resume_token: "token-1",
    account: null,
    resumed: null,
    ...overrides,
  };
}

/** A welcome that gives the place back: same id, a new token. */
export function resumedWelcome(resumed: { room: string | null; call?: string | null; missed: boolean }) {
  return welcome({ resume_token: "token-2", resumed: { call: null, ...resumed } });
}

/** Half of a random draw: the jitter of each delay is then exactly zero. */
export const noJitter = () => 0.5;

/** A client connected under `name` over the farm's first socket, with deterministic jitter. */
export async function connectedClient(name = "me", id = "self") {
  const farm = new SocketFarm();
  const network = new FakeNetwork();
  const client = new SignalingClient("wss://x/ws", farm.factory, { random: noJitter, network });
  const ready = client.connect(name);
  farm.last.open();
  farm.last.receive(welcome({ id, name }));
  await ready;
  farm.last.sent.length = 0;
  return { farm, network, client };
}

/** Take the place back on the newest socket: open it, then answer its hello. */
export function resumeOn(farm: SocketFarm, resumed: { room: string | null; missed: boolean }): FakeSocket {
  const socket = farm.last;
  socket.open();
  socket.receive(resumedWelcome(resumed));
  return socket;
}
