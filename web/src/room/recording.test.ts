import { describe, expect, it } from "vitest";
import type { Recording } from "../protocol";
import {
  anyRecorder,
  fileKind,
  formatBytes,
  formatDuration,
  isRecorder,
  newestFirst,
  recordControl,
  recordingProblem,
  recordingRow,
  runningRecording,
  settledBy,
  spokenDuration,
} from "./recording";

const recording = (
  id: string,
  started: number,
  ended: number | null,
  extra: Partial<Recording> = {},
): Recording => ({
  id,
  started,
  ended,
  bytes: 0,
  files: [],
  ...extra,
});

describe("who records", () => {
  it("is a member whose media says recording, and only that (version 1 media has no field)", () => {
    expect(isRecorder({ recording: true })).toBe(true);
    expect(isRecorder({ recording: false })).toBe(false);
    expect(isRecorder({})).toBe(false);
    expect(isRecorder({ recording: null })).toBe(false);
    expect(anyRecorder([{ recording: false }, { recording: true }])).toBe(true);
    expect(anyRecorder([{ recording: false }])).toBe(false);
    expect(anyRecorder([])).toBe(false);
  });
});

describe("the Record control", () => {
  const finished = recording("a", 1_000, 9_000);
  const running = recording("b", 10_000, null);

  it("offers Record with nothing running, Stop while the server's recorder runs", () => {
    expect(recordControl([], null)).toEqual({ label: "Record", turnOn: true, running: false, busy: false });
    expect(recordControl([finished], null)).toMatchObject({ label: "Record", turnOn: true });
    expect(recordControl([finished, running], null)).toEqual({
      label: "Stop recording",
      turnOn: false,
      running: true,
      busy: false,
    });
  });

  it("waits for the server after a press, until the list shows the change", () => {
    expect(recordControl([finished], "start")).toMatchObject({ label: "Starting recording…", busy: true });
    expect(recordControl([running], "stop")).toMatchObject({ label: "Stopping recording…", busy: true });
    // The list already says what was asked: nothing to wait for.
    expect(recordControl([running], "start")).toMatchObject({ label: "Stop recording", busy: false });
    expect(recordControl([finished], "stop")).toMatchObject({ label: "Record", busy: false });
    expect(settledBy("start", [running])).toBe(true);
    expect(settledBy("start", [finished])).toBe(false);
    expect(settledBy("stop", [finished])).toBe(true);
    expect(settledBy("stop", [running])).toBe(false);
    expect(settledBy(null, [])).toBe(true);
  });

  it("finds the running recording and lists the newest first", () => {
    expect(runningRecording([finished, running])).toBe(running);
    expect(runningRecording([finished])).toBeNull();
    expect(newestFirst([finished, running]).map((r) => r.id)).toEqual(["b", "a"]);
    const list = [finished];
    newestFirst(list);
    expect(list).toEqual([finished]); // the server's list is left as it was
  });

  it("says why recording is unavailable in words a host can act on", () => {
    expect(recordingProblem("recording_unavailable", "Recording is disabled on this server.")).toBe(
      "Recording is not available: recording is disabled on this server.",
    );
    expect(recordingProblem("recording_unavailable", "")).toBe("Recording is not available on this server.");
    expect(recordingProblem("recording_unavailable", "TLS is off")).toBe(
      "Recording is not available: TLS is off.",
    );
    expect(recordingProblem("not_host", "Only hosts can do that")).toBeNull();
  });
});

describe("a recording as the panel lists it", () => {
  it("formats sizes in SI units and durations as a clock", () => {
    expect(formatBytes(0)).toBe("0 B");
    expect(formatBytes(999)).toBe("999 B");
    expect(formatBytes(4_200)).toBe("4.2 kB");
    expect(formatBytes(38_400_000)).toBe("38 MB");
    expect(formatBytes(1_234_000_000)).toBe("1.2 GB");
    expect(formatBytes(-1)).toBe("—");
    expect(formatDuration(0)).toBe("0:00");
    expect(formatDuration(5_999)).toBe("0:05");
    expect(formatDuration(754_000)).toBe("12:34");
    expect(formatDuration(3_723_000)).toBe("1:02:03");
    expect(formatDuration(-5)).toBe("0:00");
    expect(spokenDuration(65_000)).toBe("1 minute 5 seconds");
    expect(spokenDuration(3_600_000)).toBe("1 hour");
    expect(spokenDuration(0)).toBe("0 seconds");
  });

  it("measures a finished recording by its end and a running one by the time now", () => {
    const files = [
      { name: "ann-m1.webm", bytes: 2_048_000, url: "/api/v1/recordings/a/files/ann-m1.webm?key=k" },
    ];
    const started = Date.UTC(2025, 4, 12, 14, 3, 0);
    const done = recordingRow(
      recording("a", started, started + 65_000, { bytes: 2_100_000, files }),
      started + 999_000,
      "en-GB",
    );
    expect(done).toMatchObject({
      id: "a",
      running: false,
      duration: "1:05",
      spokenDuration: "1 minute 5 seconds",
      size: "2.1 MB",
      iso: "2025-05-12T14:03:00.000Z",
      files,
    });
    expect(done.when).toMatch(/2025/);
    const live = recordingRow(recording("b", started, null), started + 7_500);
    expect(live).toMatchObject({ running: true, duration: "0:07" });
  });

  it("tells a participant's media from the chat by the file's name", () => {
    expect(fileKind("ann-m1.webm")).toBe("media");
    expect(fileKind("chat.jsonl")).toBe("chat");
    expect(fileKind("recording.json")).toBe("other");
    expect(fileKind("notes.txt")).toBe("other");
  });
});
