import { sfuNotice, type SfuState } from "../../rtc/sfuState";

const BANNER = "alert alert-warning reconnecting-banner m-2 py-2 d-flex align-items-center gap-2";

/** A passing state of the room's connections, in a sentence; the spinner while it is mended. */
function BannerText({ text, busy = true }: { text: string; busy?: boolean }) {
  return (
    <>
      {busy && <span className="spinner-border spinner-border-sm" aria-hidden="true" />}
      <span>{text}</span>
    </>
  );
}

/**
 * Shown while the signaling connection is away and being restored. Calls go on meanwhile
 * (media is peer to peer), so this is a status, not an alert.
 */
export function ReconnectingBanner() {
  return (
    <div className={BANNER} role="status" data-testid="reconnecting">
      <BannerText text="Reconnecting…" />
    </div>
  );
}

/**
 * What is going on with the media server, when the room is on the SFU and its media is not
 * flowing (src/rtc/sfuState.ts): otherwise the person sees "Connecting…" tiles and no reason.
 * It goes by itself once media flows again. The status region is always in the page (empty
 * while there is nothing to say), so that screen readers announce the sentence put in it.
 */
export function MediaServerBanner({ state }: { state: SfuState }) {
  const text = sfuNotice(state);
  return (
    <div role="status" data-testid="sfu-status" data-state={state}>
      {text !== null && (
        <div className={BANNER} data-testid="sfu-banner">
          <BannerText text={text} busy={state !== "failed"} />
        </div>
      )}
    </div>
  );
}
