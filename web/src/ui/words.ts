/** Small pieces of wording shared by components. */
import type { Departure } from "../room/hosting";

/** 1 → "1st", 2 → "2nd", 11 → "11th": a raised hand's place in the queue. */
export function ordinal(n: number): string {
  const teen = n % 100 >= 11 && n % 100 <= 13;
  const suffixes: Record<number, string> = { 1: "st", 2: "nd", 3: "rd" };
  return `${n}${teen ? "th" : (suffixes[n % 10] ?? "th")}`;
}

/** The sentence for a departure this side did not choose. */
export function departureText(departure: Departure): { title: string; detail: string } {
  const { reason, by } = departure;
  const me = departure.byMe === true;
  switch (reason) {
    case "removed":
      return {
        // No one named: the server did it (its API, for the meeting's organiser).
        title: by !== null ? `${by} removed you from this meeting` : "You were removed from this meeting",
        detail: "You can come back only if a host lets you in.",
      };
    case "ended":
      return {
        title: me
          ? "You ended the meeting for everyone"
          : by !== null
            ? `${by} ended the meeting for everyone`
            : "The meeting ended",
        detail: "Everyone has left the meeting.",
      };
    case "denied":
      return { title: "A host did not let you in", detail: "You are not in this meeting." };
    default:
      return { title: "You are no longer in this meeting", detail: "" };
  }
}
