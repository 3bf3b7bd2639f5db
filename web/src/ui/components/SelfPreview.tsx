import { canRetry, type LocalMedia, type LocalMediaState } from "../../rtc/media";
import { useTrackLevel } from "../hooks/media";
import { Avatar } from "./Avatar";
import { Icon } from "./Icon";
import { LevelBar } from "./LevelBar";
import { VideoView } from "./VideoView";

/** The name of the mic or camera button: what pressing it does. */
function deviceLabel(kind: "mic" | "camera", state: LocalMediaState): string {
  if (kind === "mic") {
    if (state.audio !== null) return state.micOn ? "Mute microphone" : "Unmute microphone";
    return canRetry(state, "audio") ? "Microphone unavailable: try again" : "No microphone available";
  }
  if (state.video !== null) return state.cameraOn ? "Turn camera off" : "Turn camera on";
  return canRetry(state, "video") ? "Camera unavailable: try again" : "No camera available";
}

/** The camera preview with mic and camera toggles and a level meter. */
export function SelfPreview({
  media,
  state,
  name,
}: {
  media: LocalMedia;
  state: LocalMediaState;
  name: string;
}) {
  const level = useTrackLevel(state.micOn ? state.audio : null);
  const cameraShown = state.cameraOn && state.video !== null;
  return (
    <div className="preview">
      <div className="preview-video">
        <VideoView
          stream={state.preview}
          self
          label="Your camera preview"
          className={cameraShown ? "" : "video-hidden"}
        />
        {!cameraShown && (
          <div className="tile-avatar">
            {state.acquiring ? (
              <span className="text-body-secondary">Starting camera…</span>
            ) : (
              <Avatar name={name || "?"} />
            )}
          </div>
        )}
        {state.video !== null && <span className="preview-caption">{name.trim() || "You"}</span>}
        <div className="preview-controls">
          <button
            type="button"
            className={`btn control ${state.micOn && state.audio ? "btn-secondary" : "btn-danger"}`}
            aria-label={deviceLabel("mic", state)}
            disabled={state.audio === null && !canRetry(state, "audio")}
            data-testid="preview-mic"
            onClick={() => (state.audio === null ? void media.retry() : media.setMicOn(!state.micOn))}
          >
            <Icon name={state.micOn && state.audio ? "mic" : "micOff"} />
          </button>
          <button
            type="button"
            className={`btn control ${cameraShown ? "btn-secondary" : "btn-danger"}`}
            aria-label={deviceLabel("camera", state)}
            disabled={state.video === null && !canRetry(state, "video")}
            data-testid="preview-camera"
            onClick={() => (state.video === null ? void media.retry() : media.setCameraOn(!state.cameraOn))}
          >
            <Icon name={cameraShown ? "camera" : "cameraOff"} />
          </button>
        </div>
      </div>
      <div className="d-flex align-items-center gap-2 mt-2">
        <Icon name={state.micOn && state.audio ? "mic" : "micOff"} size={16} />
        <LevelBar level={level} label="Microphone level" />
      </div>
    </div>
  );
}
