import type { LocalMediaState } from "../../rtc/media";

interface Props {
  state: LocalMediaState;
  onCamera: (id: string) => void;
  onMic: (id: string) => void;
  onSpeaker: (id: string) => void;
}

const canPickSpeaker = typeof HTMLMediaElement !== "undefined" && "setSinkId" in HTMLMediaElement.prototype;

/** Pickers for camera, microphone and speaker (the last only where the browser allows it). */
export function DevicePickers({ state, onCamera, onMic, onSpeaker }: Props) {
  const of = (kind: MediaDeviceKind) => state.devices.filter((d) => d.kind === kind);
  return (
    <div className="device-pickers">
      <Picker
        id="pick-camera"
        label="Camera"
        devices={of("videoinput")}
        value={state.cameraId}
        waiting={state.acquiring}
        onChange={onCamera}
      />
      <Picker
        id="pick-mic"
        label="Microphone"
        devices={of("audioinput")}
        value={state.micId}
        waiting={state.acquiring}
        onChange={onMic}
      />
      {canPickSpeaker && (
        <Picker
          id="pick-speaker"
          label="Speaker"
          devices={of("audiooutput")}
          value={state.speakerId}
          waiting={state.acquiring}
          onChange={onSpeaker}
        />
      )}
    </div>
  );
}

interface PickerProps {
  id: string;
  label: string;
  devices: MediaDeviceInfo[];
  value: string;
  waiting: boolean;
  onChange: (id: string) => void;
}

function Picker({ id, label, devices, value, waiting, onChange }: PickerProps) {
  return (
    <div className="mb-2">
      <label htmlFor={id} className="form-label small text-body-secondary mb-1">
        {label}
      </label>
      <select
        id={id}
        className="form-select form-select-sm"
        value={devices.some((d) => d.deviceId === value) ? value : ""}
        disabled={devices.length === 0}
        data-testid={id}
        onChange={(e) => onChange(e.target.value)}
      >
        {devices.length === 0 && (
          <option value="">{waiting ? "Waiting for permission…" : "None found"}</option>
        )}
        {!devices.some((d) => d.deviceId === value) && devices.length > 0 && (
          <option value="">Default</option>
        )}
        {devices.map((d, i) => (
          <option key={d.deviceId} value={d.deviceId}>
            {d.label || `${label} ${i + 1}`}
          </option>
        ))}
      </select>
    </div>
  );
}
