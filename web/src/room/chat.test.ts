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
const BIDI = /[\u202A-\u202E\u2066-\u2069\u200E\u200F\u061C]/;

describe("chatParts", () => {
  it("shows a right-to-left override inside a link instead of obeying it", () => {
    const parts = chatParts(`see https://files.example/report${RLO}fdp.exe now`);
    expect(parts).toEqual([
      { kind: "text", text: "see " },
      {
        kind: "link",
        text: "https://files.example/report⟦U+202E⟧fdp.exe",
        href: "https://files.example/report%E2%80%AEfdp.exe",
      },
      { kind: "text", text: " now" },
    ]);
  });

  it("leaves no bidi control of any kind in a link's text or address", () => {
    const controls = [
      ..."\u202A\u202B\u202C\u202D\u202E\u2066\u2067\u2068\u2069\u200E\u200F\u061C",
    ];
    for (const ch of controls) {
      const [link] = chatParts(`https://a.example/x${ch}y`);
      expect(link?.kind).toBe("link");
      expect(link?.text).not.toMatch(BIDI);
      expect(link?.kind === "link" && link.href).not.toMatch(BIDI);
      const code = ch.codePointAt(0)?.toString(16).toUpperCase().padStart(4, "0");
      expect(link?.text).toBe(`https://a.example/x⟦U+${code}⟧y`);
    }
  });

  it("keeps an address that does not parse as text, its bidi controls shown", () => {
    // A bidi control in a host name is not allowed (IDNA): no link, and no reordering either.
    const parts = chatParts(`https://files.example${RLO}exe.pdf`);
    expect(parts).toEqual([{ kind: "text", text: "https://files.example⟦U+202E⟧exe.pdf" }]);
  });

  it("keeps bidi controls in ordinary text as written", () => {
    expect(chatParts(`שלום ${RLO}abc`)).toEqual([{ kind: "text", text: `שלום ${RLO}abc` }]);
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
