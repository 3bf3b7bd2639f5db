import { describe, expect, it } from "vitest";
import { explainAccount } from "../ui/accountErrors";
import {
  AccountError,
  AccountStore,
  MAX_NAME_CHARS,
  nameLength,
  reconcileWithWelcome,
  welcomeAccount,
} from "./account";

interface Call {
  path: string;
  init: RequestInit | undefined;
}

function json(status: number, body: unknown, headers: Record<string, string> = {}): Response {
  return new Response(status === 204 ? null : JSON.stringify(body), {
    status,
    headers: { "Content-Type": "application/json", ...headers },
  });
}

function store(...answers: Response[]) {
  const calls: Call[] = [];
  const accounts = new AccountStore(
    async (path, init) => {
      calls.push({ path, init });
      const next = answers.shift();
      if (next === undefined) throw new TypeError("network down");
      return next;
    },
    async () => "T".repeat(43),
  );
  return { accounts, calls };
}

const ADA = { id: "a1", username: "ada", display_name: "Ada L." };

describe("AccountStore", () => {
  it("asks GET /session: a guest with account null, signed in with the account", async () => {
    const { accounts, calls } = store(json(200, { account: null }), json(200, { account: ADA }));
    expect(accounts.snapshot.status).toBe("loading");
    expect((await accounts.refresh()).status).toBe("guest");
    expect(await accounts.refresh()).toEqual({ status: "signed_in", account: ADA });
    expect(calls.map((c) => c.path)).toEqual(["/api/v1/session", "/api/v1/session"]);
    expect(calls[0]?.init?.method ?? "GET").toBe("GET");
  });

  it("is a guest when /session fails or answers something else", async () => {
    const { accounts } = store(json(200, { account: ADA }), json(500, {}), json(200, { account: { id: 1 } }));
    await accounts.refresh();
    expect((await accounts.refresh()).status).toBe("guest");
    await accounts.refresh();
    expect(accounts.snapshot).toEqual({ status: "guest", account: null });
    expect((await accounts.refresh()).status).toBe("guest"); // network down
  });

  it("registers with the CSRF token and JSON body, then is signed in and tells subscribers", async () => {
    const { accounts, calls } = store(json(201, ADA));
    let told = 0;
    accounts.subscribe(() => told++);
    await accounts.register({ username: "ada", display_name: "Ada L.", password: "correct horse" });
    expect(calls[0]?.path).toBe("/api/v1/accounts");
    expect(calls[0]?.init?.method).toBe("POST");
    expect((calls[0]?.init?.headers as Record<string, string>)["X-CSRF-Token"]).toBe("T".repeat(43));
    expect(JSON.parse(String(calls[0]?.init?.body))).toEqual({
      username: "ada",
      display_name: "Ada L.",
      password: "correct horse",
    });
    expect(accounts.snapshot.account).toEqual(ADA);
    expect(told).toBe(1);
  });

  it("turns a refusal into an AccountError with code, message and Retry-After", async () => {
    const { accounts } = store(
      json(429, { detail: { code: "rate_limited", message: "too many" } }, { "Retry-After": "42" }),
    );
    const error = await accounts.signIn("ada", "pw").catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AccountError);
    expect(error).toMatchObject({ code: "rate_limited", status: 429, retryAfterSeconds: 42 });
    expect(explainAccount(error).text).toBe("Too many attempts — try again in 42 seconds.");
  });

  it("signs out to a guest even when the server cannot be reached", async () => {
    const { accounts } = store(json(200, { account: ADA }));
    await accounts.refresh();
    expect(accounts.snapshot.status).toBe("signed_in");
    await expect(accounts.signOut()).rejects.toMatchObject({ code: "unreachable" });
    expect(accounts.snapshot.status).toBe("guest");
  });

  it("updates the display name with PATCH /me", async () => {
    const { accounts, calls } = store(json(200, { ...ADA, display_name: "Ada" }));
    await accounts.update({ display_name: "Ada" });
    expect(calls[0]?.init?.method).toBe("PATCH");
    expect(calls[0]?.path).toBe("/api/v1/me");
    expect(accounts.snapshot.account?.display_name).toBe("Ada");
  });
});

describe("explainAccount", () => {
  const err = (code: string, message = "") => new AccountError(code, message, 400);
  it("puts each refusal on its field, in words", () => {
    expect(explainAccount(err("username_taken"))).toEqual({
      field: "username",
      text: "That username is taken. Choose another one.",
    });
    expect(explainAccount(err("display_name_taken")).field).toBe("display_name");
    expect(explainAccount(err("invalid_password", "at least 8 chars"))).toEqual({
      field: "password",
      text: "The password must have at least 8 characters.",
    });
    expect(explainAccount(err("bad_credentials")).text).toBe("Wrong username or password.");
    expect(explainAccount(new AccountError("rate_limited", "", 429, 1)).text).toContain("in 1 second.");
  });
});

describe("welcome.account", () => {
  it("is read defensively", () => {
    expect(welcomeAccount({ type: "welcome" })).toBeUndefined();
    expect(welcomeAccount({ account: null })).toBeNull();
    expect(welcomeAccount({ account: { username: "ada", display_name: "Ada" } })).toEqual({
      username: "ada",
      display_name: "Ada",
    });
    expect(welcomeAccount({ account: { username: 1 } })).toBeUndefined();
  });

  it("asks /session again when the server's welcome disagrees", async () => {
    const { accounts, calls } = store(json(200, { account: ADA }), json(200, { account: null }));
    await accounts.refresh();
    reconcileWithWelcome(accounts, { account: { username: "ada", display_name: "Ada L." } });
    expect(calls).toHaveLength(1);
    reconcileWithWelcome(accounts, { account: null });
    await new Promise((r) => setTimeout(r, 0));
    expect(calls).toHaveLength(2);
    expect(accounts.snapshot.status).toBe("guest");
  });
});

describe("a wrong current password", () => {
  it("keeps the person signed in; an ended session makes them a guest", async () => {
    const wrong = json(401, {
      detail: { code: "bad_credentials", message: "the current password is wrong" },
    });
    const ended = json(401, { detail: { code: "not_signed_in", message: "no live session" } });
    const { accounts } = store(json(200, { account: ADA }), wrong, ended);
    await accounts.refresh();
    const change = { current_password: "x", new_password: "long enough" };
    await expect(accounts.update(change)).rejects.toMatchObject({ code: "bad_credentials" });
    expect(accounts.snapshot.status).toBe("signed_in");
    await expect(accounts.update(change)).rejects.toMatchObject({ code: "not_signed_in" });
    expect(accounts.snapshot.status).toBe("guest");
  });
});

describe("nameLength", () => {
  it("counts code points after NFC and trimming, as the server does", () => {
    expect(nameLength("Ada")).toBe(3);
    expect(nameLength("  Ada \u3000")).toBe(3); // Python strips the ideographic space too
    expect(nameLength("\u00a0Ada\u2003")).toBe(3);
    expect(nameLength("e\u0301")).toBe(1); // NFC: é
    expect(nameLength("😀")).toBe(1); // one code point, two UTF-16 units
    expect(nameLength("👩‍💻")).toBe(3); // woman, zero width joiner, laptop
    expect(nameLength("A B")).toBe(3); // inner spaces count
    expect(nameLength("\ufeffAda")).toBe(4); // U+FEFF is not Python whitespace
  });

  it("lets 64 emoji fit, where maxLength=64 (UTF-16 units) stopped at 32", () => {
    const emoji = "😀".repeat(MAX_NAME_CHARS);
    expect(emoji.length).toBe(128);
    expect(nameLength(emoji)).toBe(MAX_NAME_CHARS);
    expect(nameLength(emoji + "😀")).toBe(MAX_NAME_CHARS + 1);
  });
});
