import { useEffect, useState } from "react";
import {
  fileKind,
  formatBytes,
  recordControl,
  recordingRow,
  runningRecording,
  type Recording,
  type RecordingRow,
  type RecordPending,
} from "../../room/recording";
import { Icon } from "./Icon";
import "../styles/recording.css";

interface Props {
  recordings: readonly Recording[];
  pending: RecordPending;
  /** Someone records the room, the server's recorder or not. */
  recording: boolean;
  onRecord: (on: boolean) => void;
}

/** What a file holds, said after its name in the link's accessible name. */
const FILE_KINDS = { media: ", audio and video", chat: ", the chat", other: "" } as const;

/** How often a running recording's length is brought up to date (ms). */
const TICK_MS = 1_000;

/** Now, in ms since the epoch, renewed every TICK_MS while `ticking`. */
function useNow(ticking: boolean): number {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    if (!ticking) return;
    const timer = setInterval(() => setNow(Date.now()), TICK_MS);
    return () => clearInterval(timer);
  }, [ticking]);
  return now;
}

/**
 * A host's recordings (docs/PROTOCOL.md, `recordings`): Record or Stop at the top, then each
 * recording, newest first — when it started, how long it ran, its size, whether it still
 * runs — with a download link per file once it has ended. The links carry a signed key
 * that only hosts receive; the files are served as attachments, so a click downloads.
 */
export function RecordingsPanel({ recordings, pending, recording, onRecord }: Props) {
  const control = recordControl(recordings, pending);
  const now = useNow(runningRecording(recordings) !== null);
  const shown = recordings.map((r) => recordingRow(r, now));
  const byHand = recording && !control.running && !control.busy;
  return (
    <section className="recordings p-3" data-testid="recordings" aria-label="Recordings">
      <button
        type="button"
        className={`btn w-100 record-button ${control.running ? "btn-outline-danger" : "btn-danger"}`}
        disabled={control.busy}
        aria-busy={control.busy}
        data-testid="recordings-record"
        data-running={control.running ? "true" : "false"}
        onClick={() => onRecord(control.turnOn)}
      >
        <Icon name={control.running ? "stop" : "record"} size={18} />
        {control.label}
      </button>
      <p className="form-text mb-3" data-testid="recordings-hint">
        {control.running
          ? "Everyone sees that the meeting is being recorded. The files appear here when it ends."
          : "Everyone's audio and video and the chat are recorded on the server. Everyone sees a Recording badge."}
      </p>
      {byHand && (
        <p className="small text-body-secondary" data-testid="recordings-other">
          A recorder that was not started here is in the meeting. Remove it from the participant list to stop
          it.
        </p>
      )}
      <h3 className="h6 mb-2">Recordings of this meeting</h3>
      {shown.length === 0 ? (
        <p className="small text-body-secondary" data-testid="recordings-empty">
          No recordings of this meeting yet.
        </p>
      ) : (
        <ul
          className="list-unstyled recordings-list m-0"
          aria-label="Recordings"
          data-testid="recordings-list"
        >
          {shown.map((row) => (
            <RecordingItem key={row.id} row={row} />
          ))}
        </ul>
      )}
    </section>
  );
}

function RecordingItem({ row }: { row: RecordingRow }) {
  return (
    <li
      className={`recording-item ${row.running ? "running" : ""}`}
      data-testid="recording"
      data-id={row.id}
      data-state={row.running ? "running" : "finished"}
    >
      <time dateTime={row.iso} className="recording-when">
        {row.when}
      </time>
      <div className="recording-facts">
        <span>
          <span aria-hidden="true" data-testid="recording-duration">
            {row.duration}
          </span>
          <span className="visually-hidden">{row.spokenDuration}</span>
          {/* The size is known once files are written; a recording just started has none yet. */}
          {row.bytes > 0 && (
            <>
              {" · "}
              <span data-testid="recording-size">{row.size}</span>
            </>
          )}
          {row.files.length > 0 && ` · ${row.files.length} ${row.files.length === 1 ? "file" : "files"}`}
        </span>
        {row.running ? (
          <span className="badge text-bg-danger" data-testid="recording-state">
            Recording
          </span>
        ) : (
          <span className="badge text-bg-secondary" data-testid="recording-state">
            Finished
          </span>
        )}
      </div>
      {row.running ? null : row.files.length === 0 ? (
        <p className="small text-body-secondary m-0 mt-1">No files were written.</p>
      ) : (
        <ul className="recording-files" aria-label={`Files of the recording of ${row.when}`}>
          {row.files.map((file) => (
            <li key={file.name} className="recording-file" data-testid="recording-file" data-name={file.name}>
              <a
                href={file.url}
                download={file.name}
                className="link-light"
                aria-label={`Download ${file.name}${FILE_KINDS[fileKind(file.name)]}`}
                data-testid="recording-download"
              >
                <Icon name="download" size={16} />
                <span>{file.name}</span>
              </a>
              <span className="recording-file-size">{formatBytes(file.bytes)}</span>
            </li>
          ))}
        </ul>
      )}
    </li>
  );
}
