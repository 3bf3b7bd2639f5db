/**
 * Accounts over REST: who is signed in, sign up, sign in, sign out and account changes.
 * Framework-free: an `AccountStore` holds a snapshot and tells subscribers when it changes;
 * the UI's `useAccount` hook subscribes. Every state change carries the CSRF token.
 */
import { csrfToken } from "../room/connect";

/** The signed-in account, as `GET /api/v1/me` returns it. */
export interface Account {
  id: string;
  username: string;
  display_name: string;
}

export type AccountState =
  | { status: "loading"; account: null }
  | { status: "guest"; account: null }
  | { status: "signed_in"; account: Account };

/**
 * The most characters a name may have (usernames, display names, the name a guest joins
 * under): the server's `limits.max_name_chars` default (src/salon/core/settings.py).
 */
export const MAX_NAME_CHARS = 64;

/** Python's `str.isspace()` characters, which `str.strip()` (the server's trim) removes. */
const PY_SPACE = new Set(
  "\t\n\v\f\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000",
);

function pyStrip(text: string): string[] {
  const chars = [...text];
  let start = 0;
  let end = chars.length;
  while (start < end && PY_SPACE.has(chars[start] ?? "")) start += 1;
  while (end > start && PY_SPACE.has(chars[end - 1] ?? "")) end -= 1;
  return chars.slice(start, end);
}

/**
 * How many characters the server counts in a name (src/salon/core/validate.py
 * `display_name`): NFC-normalised, trimmed, then code points — so "👩‍💻" is 3 (woman, zero
 * width joiner, laptop), "é" typed as e + accent is 1, and 64 emoji fit where an input's
 * `maxLength` (UTF-16 units) stops at 32.
 */
export function nameLength(raw: string): number {
  return pyStrip(raw.normalize("NFC")).length;
}

/** A refused account request: the server's stable code and sentence, and Retry-After. */
export class AccountError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly status: number,
    readonly retryAfterSeconds: number | null = null,
  ) {
    super(message);
    this.name = "AccountError";
  }
}

export interface SignUpForm {
  username: string;
  display_name: string;
  password: string;
}

/** `PATCH /api/v1/me`: a new display name, or a new password with the current one. */
export type AccountChange = { display_name: string } | { current_password: string; new_password: string };

type Fetch = (input: string, init?: RequestInit) => Promise<Response>;

function retryAfter(response: Response): number | null {
  const raw = response.headers.get("Retry-After");
  if (raw === null) return null;
  const seconds = Number(raw);
  return Number.isFinite(seconds) && seconds >= 0 ? Math.ceil(seconds) : null;
}

/** The `{"detail": {"code", "message"}}` body of a refusal, as an AccountError. */
async function refusal(response: Response): Promise<AccountError> {
  let code = "http_" + String(response.status);
  let message = `the server answered ${response.status}`;
  try {
    const body = (await response.json()) as { detail?: unknown };
    const detail = body.detail;
    if (typeof detail === "object" && detail !== null && "code" in detail) {
      const d = detail as { code: unknown; message?: unknown };
      if (typeof d.code === "string") code = d.code;
      if (typeof d.message === "string") message = d.message;
    } else if (Array.isArray(detail)) {
      code = "invalid_request"; // FastAPI's own validation error: a missing or mistyped field
    }
  } catch {
    // Not JSON: keep the status-based code.
  }
  return new AccountError(code, message, response.status, retryAfter(response));
}

/** The `account` of a `GET /api/v1/session` body, read defensively; null for a guest. */
export function sessionAccount(body: unknown): Account | null {
  if (typeof body !== "object" || body === null) return null;
  const account = (body as { account?: unknown }).account;
  if (typeof account !== "object" || account === null) return null;
  const { id, username, display_name } = account as Record<string, unknown>;
  return typeof id === "string" && typeof username === "string" && typeof display_name === "string"
    ? { id, username, display_name }
    : null;
}

const UNREACHABLE = () => new AccountError("unreachable", "could not reach the server", 0);

export class AccountStore {
  private state: AccountState = { status: "loading", account: null };
  private readonly listeners = new Set<() => void>();
  private loading: Promise<AccountState> | null = null;

  constructor(
    private readonly fetcher: Fetch = (input, init) => fetch(input, init),
    private readonly token: () => Promise<string> = csrfToken,
  ) {}

  get snapshot(): AccountState {
    return this.state;
  }

  subscribe(handler: () => void): () => void {
    this.listeners.add(handler);
    return () => this.listeners.delete(handler);
  }

  /** Ask the server who is signed in (once; later calls share the first answer). */
  load(): Promise<AccountState> {
    this.loading ??= this.refresh();
    return this.loading;
  }

  /**
   * `GET /api/v1/session`: `{"account": …}` signed in, `{"account": null}` a guest — 200 either
   * way, so a guest's page logs no failed request (`/api/v1/me` answers a guest 401). A server
   * that cannot be reached, or answers anything else, leaves this page a guest.
   */
  async refresh(): Promise<AccountState> {
    try {
      const response = await this.fetcher("/api/v1/session", { credentials: "same-origin" });
      const account = response.ok ? sessionAccount(await response.json()) : null;
      this.set(account === null ? { status: "guest", account: null } : { status: "signed_in", account });
    } catch {
      this.set({ status: "guest", account: null });
    }
    return this.state;
  }

  /** `POST /api/v1/accounts`: create the account and sign it in. */
  async register(form: SignUpForm): Promise<Account> {
    return this.signedIn(await this.send("POST", "/api/v1/accounts", form));
  }

  /** `POST /api/v1/session`: sign in with username and password. */
  async signIn(username: string, password: string): Promise<Account> {
    return this.signedIn(await this.send("POST", "/api/v1/session", { username, password }));
  }

  /** `DELETE /api/v1/session`: sign out; this page is a guest afterwards either way. */
  async signOut(): Promise<void> {
    try {
      await this.send("DELETE", "/api/v1/session");
    } finally {
      this.set({ status: "guest", account: null });
    }
  }

  /** `PATCH /api/v1/me`: change the display name or the password. */
  async update(change: AccountChange): Promise<Account> {
    return this.signedIn(await this.send("PATCH", "/api/v1/me", change));
  }

  private signedIn(body: unknown): Account {
    const account = body as Account;
    this.set({ status: "signed_in", account });
    return account;
  }

  private async send(method: string, path: string, body?: unknown): Promise<unknown> {
    let response: Response;
    try {
      const headers: Record<string, string> = { "X-CSRF-Token": await this.token() };
      if (body !== undefined) headers["Content-Type"] = "application/json";
      response = await this.fetcher(path, {
        method,
        headers,
        credentials: "same-origin",
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      });
    } catch (error) {
      if (error instanceof AccountError) throw error;
      throw UNREACHABLE();
    }
    if (!response.ok) {
      const error = await refusal(response);
      if (error.code === "not_signed_in") this.set({ status: "guest", account: null });
      throw error;
    }
    return response.status === 204 ? null : ((await response.json()) as unknown);
  }

  private set(state: AccountState): void {
    this.state = state;
    this.listeners.forEach((l) => l());
  }
}

/** The `welcome.account` the server adds for a signed-in connection. */
export interface WelcomeAccount {
  username: string;
  display_name: string;
}

/**
 * `welcome.account`, read defensively: the account, `null` for a guest, or `undefined` when
 * this server's welcome does not say (older servers have no such field).
 */
export function welcomeAccount(welcome: unknown): WelcomeAccount | null | undefined {
  if (typeof welcome !== "object" || welcome === null || !("account" in welcome)) return undefined;
  const account = (welcome as { account: unknown }).account;
  if (account === null) return null;
  if (typeof account !== "object") return undefined;
  const { username, display_name } = account as Record<string, unknown>;
  return typeof username === "string" && typeof display_name === "string"
    ? { username, display_name }
    : undefined;
}

/** After a handshake: ask again who is signed in when the server's answer disagrees with ours. */
export function reconcileWithWelcome(store: AccountStore, welcome: unknown): void {
  const said = welcomeAccount(welcome);
  if (said === undefined) return;
  const mine = store.snapshot.account;
  if ((said === null) !== (mine === null) || (said && mine && said.display_name !== mine.display_name))
    void store.refresh();
}
