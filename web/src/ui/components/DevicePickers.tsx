import type { AudioProcessing, DeviceProblem, LocalMediaState } from "../../rtc/media";
import "../styles/access.css";

interface Props {
  state: LocalMediaState;
  onCamera: (id: string) => void;
  onMic: (id: string) => void;
  onSpeaker: (id: string) => void;
  /**
   * Shows the "Noise suppression" and "Echo cancellation" switches; called with the one
   * switched. Pass `(change) => void media.setProcessing(change)` (applied to the running
   * microphone without renegotiating).
   */
  onProcessing?: (change: Partial<AudioProcessing>) => void;
}

const canPickSpeaker = typeof HTMLMediaElement !== "undefined" && "setSinkId" in HTMLMediaElement.prototype;

/** What an empty picker says when its device could not be had. */
const UNAVAILABLE: Record<DeviceProblem, string> = {
  denied: "Blocked",
  busy: "In use by another app",
  missing: "None found",
  failed: "Not working",
};

/**
 * Pickers for camera, microphone and speaker (the last only where the browser allows it),
 * and, with `onProcessing`, the microphone's processing switches.
 */
export function DevicePickers({ state, onCamera, onMic, onSpeaker, onProcessing }: Props) {
  const of = (kind: MediaDeviceKind) => state.devices.filter((d) => d.kind === kind);
  return (
    <div className="device-pickers">
      <Picker
        id="pick-camera"
        label="Camera"
        devices={of("videoinput")}
        value={state.cameraId}
        waiting={state.acquiring}
        problem={state.video === null ? state.videoProblem : null}
        onChange={onCamera}
      />
      <Picker
        id="pick-mic"
        label="Microphone"
        devices={of("audioinput")}
        value={state.micId}
        waiting={state.acquiring}
        problem={state.audio === null ? state.audioProblem : null}
        onChange={onMic}
      />
      {canPickSpeaker && (
        <Picker
          id="pick-speaker"
          label="Speaker"
          devices={of("audiooutput")}
          value={state.speakerId}
          waiting={state.acquiring}
          problem={null}
          empty="System default"
          onChange={onSpeaker}
        />
      )}
      {onProcessing && <ProcessingSwitches processing={state.processing} onChange={onProcessing} />}
    </div>
  );
}

interface PickerProps {
  id: string;
  label: string;
  devices: MediaDeviceInfo[];
  value: string;
  waiting: boolean;
  /** Why this kind has no device (blocked, busy…): said instead of the list. */
  problem: DeviceProblem | null;
  /** What an empty list says when nothing went wrong. */
  empty?: string;
  onChange: (id: string) => void;
}

function Picker({
  id,
  label,
  devices,
  value,
  waiting,
  problem,
  empty = "None found",
  onChange,
}: PickerProps) {
  // A blocked device may still be listed (without labels): blocked is what matters.
  const blocked = problem === "denied" && !waiting;
  const unavailable = devices.length === 0 || blocked;
  const placeholder = waiting ? "Waiting for permission…" : problem !== null ? UNAVAILABLE[problem] : empty;
  return (
    <div className="mb-2">
      <label htmlFor={id} className="form-label small text-body-secondary mb-1">
        {label}
      </label>
      <select
        id={id}
        className="form-select form-select-sm"
        value={!unavailable && devices.some((d) => d.deviceId === value) ? value : ""}
        disabled={unavailable}
        data-testid={id}
        data-problem={problem ?? undefined}
        onChange={(e) => onChange(e.target.value)}
      >
        {unavailable && <option value="">{placeholder}</option>}
        {!unavailable && !devices.some((d) => d.deviceId === value) && <option value="">Default</option>}
        {!unavailable &&
          devices.map((d, i) => (
            <option key={d.deviceId} value={d.deviceId}>
              {d.label || `${label} ${i + 1}`}
            </option>
          ))}
      </select>
    </div>
  );
}

/** Noise suppression and echo cancellation: switches, on by default, remembered. */
function ProcessingSwitches({
  processing,
  onChange,
}: {
  processing: AudioProcessing;
  onChange: (change: Partial<AudioProcessing>) => void;
}) {
  return (
    <fieldset className="device-switches mb-2" aria-describedby="processing-hint">
      <legend className="visually-hidden">Microphone sound</legend>
      <div className="device-switch-row">
        <Switch
          id="noise-suppression"
          label="Noise suppression"
          on={processing.noiseSuppression}
          onChange={(on) => onChange({ noiseSuppression: on })}
        />
        <Switch
          id="echo-cancellation"
          label="Echo cancellation"
          on={processing.echoCancellation}
          onChange={(on) => onChange({ echoCancellation: on })}
        />
      </div>
      <div id="processing-hint" className="form-text mt-0">
        Both on suits most rooms. Turn echo cancellation off only with headphones.
      </div>
    </fieldset>
  );
}

function Switch(props: { id: string; label: string; on: boolean; onChange: (on: boolean) => void }) {
  const { id, label, on, onChange } = props;
  return (
    <div className="form-check form-switch mb-0">
      <input
        className="form-check-input"
        type="checkbox"
        role="switch"
        id={id}
        data-testid={id}
        checked={on}
        onChange={(e) => onChange(e.target.checked)}
      />
      <label className="form-check-label small" htmlFor={id}>
        {label}
      </label>
    </div>
  );
}
