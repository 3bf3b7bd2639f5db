/**
 * Recording a room (docs/PROTOCOL.md, protocol version 2): who records, what a host's
 * Record button says, and the recordings a host can download. Pure: no DOM, no clock
 * except the `now` passed in.
 *
 * Anyone whose media says `recording: true` records the room — the server's recorder a host
 * started, or a recorder bot someone ran by hand — and every client shows a "Recording"
 * badge while one is in the room. Only the server's own recorder (`MemberInfo.recorder`,
 * which no client can claim) loses its tile; one that merely says it records keeps it. Only hosts get the `recordings` list, with a signed
 * download link per file; the Record button follows that list, never a guess made ahead
 * of the server.
 */
import type { Recording, RecordingFile } from "../protocol";

export type { Recording, RecordingFile };

/** What a member sends, as far as recording goes (`recording` is absent before version 2). */
export interface RecordingMedia {
  readonly recording?: boolean | null;
}

/** This member records the room (a recorder, not a person). */
export const isRecorder = (media: RecordingMedia): boolean => media.recording === true;

/** Someone in the room records it: the badge shows. */
export const anyRecorder = (members: readonly { readonly recording: boolean }[]): boolean =>
  members.some((m) => m.recording);

/** A start or a stop the host asked for and the server has not answered yet. */
export type RecordPending = "start" | "stop" | null;

/** How long a start or stop may go unanswered before the button is usable again (ms). */
export const RECORD_PENDING_MS = 15_000;

/** The recording the server's recorder is writing now, if any. */
export function runningRecording(recordings: readonly Recording[]): Recording | null {
  return recordings.find((r) => r.ended === null || r.ended === undefined) ?? null;
}

/** Newest first: the list a host reads starts with what just happened. */
export function newestFirst(recordings: readonly Recording[]): Recording[] {
  return [...recordings].sort((a, b) => b.started - a.started || (a.id < b.id ? 1 : -1));
}

/** Whether a pending start or stop has been answered by the list the server sent. */
export function settledBy(pending: RecordPending, recordings: readonly Recording[]): boolean {
  if (pending === null) return true;
  const running = runningRecording(recordings) !== null;
  return pending === "start" ? running : !running;
}

/** What the host's Record control says and does. */
export interface RecordControl {
  /** The button's name: "Record", "Stop recording", "Starting recording…", "Stopping recording…". */
  readonly label: string;
  /** A press asks for this (`record {on}`). */
  readonly turnOn: boolean;
  /** The server's recorder is running (the button is drawn pressed). */
  readonly running: boolean;
  /** Waiting for the server's answer: the button does nothing. */
  readonly busy: boolean;
}

export function recordControl(recordings: readonly Recording[], pending: RecordPending): RecordControl {
  const running = runningRecording(recordings) !== null;
  if (pending === "start" && !running)
    return { label: "Starting recording…", turnOn: false, running: false, busy: true };
  if (pending === "stop" && running)
    return { label: "Stopping recording…", turnOn: false, running: true, busy: true };
  return running
    ? { label: "Stop recording", turnOn: false, running: true, busy: false }
    : { label: "Record", turnOn: true, running: false, busy: false };
}

/** Why recording could not start, in words a host can act on. */
export function recordingProblem(code: string, message: string): string | null {
  if (code !== "recording_unavailable") return null;
  const reason = message.trim().replace(/\.$/, "");
  return reason === ""
    ? "Recording is not available on this server."
    : `Recording is not available: ${lowerFirst(reason)}.`;
}

function lowerFirst(text: string): string {
  // "Recording is disabled" reads on after the colon; an acronym ("TLS …") keeps its case.
  return /^[A-Z][a-z]/.test(text) ? text.charAt(0).toLowerCase() + text.slice(1) : text;
}

/** A size in bytes as people read it: "812 B", "4.2 kB", "38 MB", "1.2 GB" (SI units). */
export function formatBytes(bytes: number): string {
  if (!Number.isFinite(bytes) || bytes < 0) return "—";
  const units = ["B", "kB", "MB", "GB", "TB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit += 1;
  }
  if (unit === 0) return `${Math.round(value)} B`;
  const shown = value < 10 ? value.toFixed(1) : Math.round(value).toString();
  return `${shown} ${units[unit]}`;
}

/** A duration in ms as "0:05", "12:34" or "1:02:03" (rounded down to the second). */
export function formatDuration(ms: number): string {
  const total = Math.max(0, Math.floor(ms / 1000));
  const hours = Math.floor(total / 3600);
  const minutes = Math.floor((total % 3600) / 60);
  const seconds = total % 60;
  const two = (n: number) => n.toString().padStart(2, "0");
  return hours > 0 ? `${hours}:${two(minutes)}:${two(seconds)}` : `${minutes}:${two(seconds)}`;
}

/** The same duration spelled out, for screen readers ("1 minute 5 seconds"). */
export function spokenDuration(ms: number): string {
  const total = Math.max(0, Math.floor(ms / 1000));
  const parts: [number, string][] = [
    [Math.floor(total / 3600), "hour"],
    [Math.floor((total % 3600) / 60), "minute"],
    [total % 60, "second"],
  ];
  const said = parts.filter(([n]) => n > 0).map(([n, word]) => `${n} ${word}${n === 1 ? "" : "s"}`);
  return said.length === 0 ? "0 seconds" : said.join(" ");
}

/** One line of the Recordings panel, worked out from a recording and the time now. */
export interface RecordingRow {
  readonly id: string;
  readonly running: boolean;
  /** When it started, in the browser's locale ("12 May 2025, 14:03"). */
  readonly when: string;
  /** The same instant as ISO 8601, for `<time dateTime>`. */
  readonly iso: string;
  /** How long it ran, or has run so far ("0:05"). */
  readonly duration: string;
  readonly spokenDuration: string;
  readonly size: string;
  readonly bytes: number;
  readonly files: readonly RecordingFile[];
}

export function recordingRow(recording: Recording, now: number, locale?: string): RecordingRow {
  const running = recording.ended === null || recording.ended === undefined;
  const end = running ? now : (recording.ended ?? now);
  const length = Math.max(0, end - recording.started);
  const started = new Date(recording.started);
  return {
    id: recording.id,
    running,
    when: started.toLocaleString(locale, { dateStyle: "medium", timeStyle: "short" }),
    iso: started.toISOString(),
    duration: formatDuration(length),
    spokenDuration: spokenDuration(length),
    size: formatBytes(recording.bytes),
    bytes: recording.bytes,
    files: recording.files,
  };
}

/** What a file holds, from its name: one person's audio and video, or the chat. */
export function fileKind(name: string): "media" | "chat" | "other" {
  if (/\.(webm|mkv)$/i.test(name)) return "media";
  if (/\.jsonl$/i.test(name)) return "chat";
  return "other";
}
