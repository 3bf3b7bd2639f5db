import type { IceServer } from "../protocol";
import { refreshDelayMs, turnExpiryMs } from "../rtc/ice";
import type { SignalingClient } from "../signaling/client";

/**
 * TURN credentials expire (hours): ask for fresh ones (`ice_refresh`) at half their remaining
 * life (docs/PROTOCOL.md §2.2), so that connections and ICE restarts made later can still
 * relay. The answer, `ice_servers`, goes to whoever listens for it (and to
 * `SignalingClient.iceServers`); schedule again with it.
 */
export class IceRefresh {
  private timer: ReturnType<typeof setTimeout> | null = null;

  constructor(private readonly client: SignalingClient) {}

  /** Ask once, at half the remaining life of the earliest of `servers`' credentials. */
  schedule(servers: readonly IceServer[]): void {
    this.stop();
    const expiry = turnExpiryMs(servers);
    if (expiry === null) return;
    this.timer = setTimeout(
      () => {
        this.timer = null;
        this.client.send({ type: "ice_refresh" });
      },
      refreshDelayMs(expiry, Date.now()),
    );
  }

  stop(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }
}
