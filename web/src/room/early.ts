/**
 * The pre-join page's signaling connection, opened and greeted while the person is still
 * looking at their preview, so that pressing Join costs one `join` and not a TCP, TLS and
 * WebSocket handshake and a `hello` first.
 *
 * Nobody sees the early connection: its name is not reachable, so it is in no presence list
 * (§4.4), no room hears of it until `join`, and a signed-in one takes nothing from the
 * account's place in another tab until `join` (§2.8). It is let go after `EARLY_LIFETIME_MS`,
 * well inside the server's idle deadline for a greeted connection that joins nothing
 * (`idle_greeted_seconds`, default 120, §2.1 item 6), and at once if the server closes it
 * first: it is never resumed. Join then opens a new one. A refused `hello` (a name the server
 * will not take) is not an error here: Join says hello again and shows the refusal.
 */
import type { SignalingClient } from "../signaling/client";
import { connectAs } from "./connect";

/** How long a greeted early connection is kept for Join. */
export const EARLY_LIFETIME_MS = 60_000;

interface Held {
  name: string;
  /** Who said it: the account signed in when it was opened (the cookie it carried), or "". */
  who: string;
  client: Promise<SignalingClient | null>;
  /** Unsubscribes from the client's losses: once taken, they are the taker's business. */
  offs: (() => void)[];
  /** Taken by Join (maybe still opening): no longer this holder's to close. */
  taken: boolean;
}

export class EarlyGreeting {
  private held: Held | null = null;

  constructor(private readonly open: (name: string) => Promise<SignalingClient> = connectAs) {}

  /**
   * Greet under `name` as `who` (an account id, or "" for a guest), unless a connection so
   * greeted is already held or opening.
   */
  prepare(name: string, who = ""): void {
    if (this.held?.name === name && this.held.who === who) return;
    this.drop();
    const held: Held = {
      name,
      who,
      offs: [],
      taken: false,
      client: this.open(name).then(
        (client) => {
          if (this.held !== held && !held.taken) {
            client.close(); // dropped while it was opening
            return null;
          }
          const forget = () => {
            if (held.taken) return;
            if (this.held === held) this.held = null;
            client.close();
          };
          // Closed by the server's idle deadline, or lost, or kept long enough: Join will
          // open a new one.
          const expiry = setTimeout(forget, EARLY_LIFETIME_MS);
          held.offs.push(
            client.onReconnecting(forget),
            client.onClose(forget),
            () => clearTimeout(expiry),
          );
          globalThis.performance?.mark?.("salon:prejoin-greeted"); // for bench/call_setup.py
          return client;
        },
        () => null,
      ),
    };
    this.held = held;
  }

  /**
   * The held connection if it is greeted under `name` as `who` and open, now the caller's to
   * keep or close; else null (and whatever was held is closed).
   */
  async take(name: string, who = ""): Promise<SignalingClient | null> {
    const held = this.held;
    this.held = null;
    if (held === null) return null;
    held.taken = true;
    const client = await held.client;
    for (const off of held.offs) off();
    if (client === null) return null;
    if (held.name === name && held.who === who && client.state === "open") return client;
    client.close();
    return null;
  }

  /** Close what is held (leaving the pre-join page, or the name changed). */
  drop(): void {
    const held = this.held;
    this.held = null;
    void held?.client.then((client) => client?.close());
  }
}
