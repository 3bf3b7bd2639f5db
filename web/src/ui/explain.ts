import { SignalingError } from "../signaling/client";

/** A sentence for a person, from a failed connect or join. */
export function explain(error: unknown, name: string): string {
  const code = error instanceof SignalingError ? error.code : "";
  switch (code) {
    case "unreachable":
      // A refused handshake (HTTP 429 or 503: too many connections, or the server starting or
      // stopping) looks the same to a page as an unreachable server (docs/PROTOCOL.md §1.1).
      return "Can't reach the Salon server: your connection may be down, or the server busy. Try again in a moment.";
    case "server_full":
      return "This server is at capacity right now. Try again in a little while.";
    case "room_full":
      return "This meeting is full. Try again when someone leaves.";
    case "name_taken":
      // The server says so in its sentence when the name is a registered account's.
      return error instanceof SignalingError && /account|registered/i.test(error.message)
        ? `"${name}" belongs to a registered account. Sign in if it is yours, or choose another name.`
        : `Someone online is already called "${name}". Choose another name.`;
    case "invalid_name":
      return error instanceof SignalingError
        ? `That name does not work: ${error.message}.`
        : "That name does not work.";
    case "no_such_room":
    case "invalid_room":
      return "There is no meeting at this link. Check the link or start a new meeting.";
    case "sign_in_required":
      return "Only people with an account can join meetings on this server. Sign in, or create an account.";
    case "wrong_password":
      return "This meeting needs a password.";
    default:
      return error instanceof Error ? error.message : "Something went wrong. Try again.";
  }
}

/** A refused join in a sentence; a password the server turned down is "not right". */
export function explainJoin(error: unknown, name: string, password: string): string {
  const code = error instanceof SignalingError ? error.code : "";
  if (code === "wrong_password")
    return password !== "" ? "That password is not right." : "This meeting needs a password.";
  if (code === "room_locked") return "This meeting is locked by its host.";
  return explain(error, name);
}
