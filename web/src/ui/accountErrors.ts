import { AccountError } from "../account/account";

/** Which form field a refusal belongs to; `form` for the whole form. */
export type AccountField = "username" | "display_name" | "password" | "form";

export interface Explained {
  field: AccountField;
  text: string;
}

function seconds(n: number): string {
  return n === 1 ? "1 second" : `${n} seconds`;
}

/** A sentence for a person, and the field it belongs to, from a failed account request. */
export function explainAccount(error: unknown): Explained {
  if (!(error instanceof AccountError)) return { field: "form", text: "Something went wrong. Try again." };
  const detail = error.message.replace(/\bchars\b/g, "characters");
  switch (error.code) {
    case "username_taken":
      return { field: "username", text: "That username is taken. Choose another one." };
    case "display_name_taken":
      return { field: "display_name", text: "That display name is taken. Choose another one." };
    case "invalid_username":
      return { field: "username", text: `That username does not work: ${detail}.` };
    case "invalid_name":
      return { field: "display_name", text: `That display name does not work: ${detail}.` };
    case "invalid_password":
      return { field: "password", text: `The password must have ${detail}.` };
    case "bad_credentials":
      return { field: "form", text: "Wrong username or password." };
    case "rate_limited":
      return {
        field: "form",
        text:
          error.retryAfterSeconds !== null
            ? `Too many attempts — try again in ${seconds(error.retryAfterSeconds)}.`
            : "Too many attempts — wait a minute, then try again.",
      };
    case "not_signed_in":
      return { field: "form", text: "You are not signed in any more. Sign in again." };
    case "csrf":
      return { field: "form", text: "This page is out of date. Reload it and try again." };
    case "unreachable":
      return { field: "form", text: "Can't reach the Salon server. Check your connection, then try again." };
    case "invalid_request":
      return { field: "form", text: "Fill in every field, then try again." };
    case "http_404":
    case "http_405":
      return { field: "form", text: "This Salon server cannot do that yet." };
    default:
      return { field: "form", text: error.message };
  }
}
