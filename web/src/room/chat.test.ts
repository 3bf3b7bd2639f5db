import { describe, expect, it } from "vitest";
import type { ChatEntry } from "../protocol";
import {
  chatKeyAction,
  chatLength,
  chatParts,
  readUpTo,
  revealBidiControls,
  unreadAfter,
  type ChatKey,
} from "./chat";

const RLO = "\u202E";

const entry = (seq: number, from: string): ChatEntry => ({
  room: "r",
  id: `c${seq}`,
  seq,
  ts: seq,
  from,
  name: from,
  text: "hi",
  client_id: null,
});

describe("chatParts", () => {
  it("ends a link at a right-to-left override and shows the override", () => {
    const parts = chatParts(`see https://files.example/report${RLO}fdp.exe now`);
    expect(parts).toEqual([
      { kind: "text", text: "see " },
      { kind: "link", text: "https://files.example/report", href: "https://files.example/report" },
      { kind: "text", text: "⟦U+202E⟧fdp.exe now" }, // it reorders nothing, and it says so
    ]);
  });

  it("ends a link at every bidi control: none in a link's text or address", () => {
    const controls = [
      ..."\u202A\u202B\u202C\u202D\u202E\u2066\u2067\u2068\u2069\u200E\u200F\u061C",
    ];
    for (const ch of controls) {
      const [link, rest] = chatParts(`https://a.example/x${ch}y`);
      expect(link).toEqual({ kind: "link", text: "https://a.example/x", href: "https://a.example/x" });
      expect(rest?.kind).toBe("text");
    }
  });

  it("shows run controls in plain text, so words cannot pose as an address", () => {
    // U+202E … U+202C around reversed letters would read "https://good-bank.example".
    const text = `${RLO}elpmaxe.knab-doog//:sptth\u202C (safe) https://evil.example/login`;
    const [plain, link] = chatParts(text);
    expect(plain).toEqual({
      kind: "text",
      text: "⟦U+202E⟧elpmaxe.knab-doog//:sptth⟦U+202C⟧ (safe) ",
    });
    expect(link).toEqual({ kind: "link", text: "https://evil.example/login", href: "https://evil.example/login" });
    for (const ch of [..."\u202A\u202B\u202C\u202D\u2066\u2067\u2068\u2069"]) {
      expect(chatParts(`a${ch}b`)).toEqual([{ kind: "text", text: revealBidiControls(`a${ch}b`) }]);
    }
  });

  it("keeps the marks right-to-left writing uses in plain text", () => {
    const hebrew = "שלום\u200F, hi\u200E and \u061C";
    expect(chatParts(hebrew)).toEqual([{ kind: "text", text: hebrew }]);
  });

  it("normalises the address it opens: punycode host, ASCII only", () => {
    const [link] = chatParts("https://bücher.example/ä");
    expect(link).toEqual({
      kind: "link",
      text: "https://bücher.example/ä",
      href: "https://xn--bcher-kva.example/%C3%A4",
    });
  });

  it("leaves sentence punctuation and a closing bracket outside the link", () => {
    expect(chatParts("(see https://a.example/x).")).toEqual([
      { kind: "text", text: "(see " },
      { kind: "link", text: "https://a.example/x", href: "https://a.example/x" },
      { kind: "text", text: ")." },
    ]);
    const [, wiki] = chatParts("at https://w.example/Foo_(bar), ok");
    expect(wiki).toEqual({ kind: "link", text: "https://w.example/Foo_(bar)", href: "https://w.example/Foo_(bar)" });
  });

  it("links only http and https, and keeps line breaks between parts", () => {
    const parts = chatParts("one https://a.example\njavascript:alert(1)\nftp://b.example");
    expect(parts).toEqual([
      { kind: "text", text: "one " },
      { kind: "link", text: "https://a.example", href: "https://a.example/" },
      { kind: "text", text: "\njavascript:alert(1)\nftp://b.example" },
    ]);
  });

  it("revealBidiControls names each control by its code point", () => {
    expect(revealBidiControls("a\u2067b\u061Cc")).toBe("a⟦U+2067⟧b⟦U+061C⟧c");
  });
});

const key = (over: Partial<ChatKey>): ChatKey => ({
  key: "Enter",
  shiftKey: false,
  altKey: false,
  ctrlKey: false,
  metaKey: false,
  isComposing: false,
  ...over,
});

describe("chatKeyAction", () => {
  it("sends on Enter and leaves Shift+Enter to make a new line", () => {
    expect(chatKeyAction(key({}))).toBe("send");
    expect(chatKeyAction(key({ shiftKey: true }))).toBe("newline");
    expect(chatKeyAction(key({ ctrlKey: true }))).toBe("send");
    expect(chatKeyAction(key({ metaKey: true }))).toBe("send");
  });

  it("leaves an input method's Enter and other keys alone", () => {
    expect(chatKeyAction(key({ isComposing: true }))).toBeNull();
    expect(chatKeyAction(key({ altKey: true }))).toBeNull();
    expect(chatKeyAction(key({ key: "a" }))).toBeNull();
  });
});

describe("chatLength", () => {
  it("counts code points after NFC, as the server does", () => {
    expect(chatLength("😀😀")).toBe(2);
    expect(chatLength("e\u0301")).toBe(1);
  });
});

describe("unreadAfter", () => {
  const chat = [entry(1, "a"), entry(2, "me"), entry(3, "b"), entry(4, "a")];

  it("counts others' messages after the last one seen, never one's own", () => {
    expect(unreadAfter(chat, 0, "me")).toBe(3);
    expect(unreadAfter(chat, 2, "me")).toBe(2);
    expect(unreadAfter(chat, 4, "me")).toBe(0);
  });
});

describe("readUpTo", () => {

  it("clears the count when the chat is opened, and counts again only what comes after", () => {
    let chat = [entry(1, "a")];
    let seen = 1; // the history a join brings is read
    const unread = (open: boolean) => {
      seen = readUpTo(seen, chat.at(-1)?.seq ?? 0, open);
      return open ? 0 : unreadAfter(chat, seen, "me");
    };
    chat = [...chat, entry(2, "b"), entry(3, "me")];
    expect(unread(false)).toBe(1);
    expect(unread(true)).toBe(0); // read
    expect(unread(false)).toBe(0); // closed again: still read
    chat = [...chat, entry(4, "a")];
    expect(unread(false)).toBe(1);
  });

  it("starts over below what was seen when the log starts afresh", () => {
    expect(readUpTo(40, 3, false)).toBe(3);
    expect(readUpTo(3, 9, false)).toBe(3);
    expect(readUpTo(3, 9, true)).toBe(9);
  });
});
