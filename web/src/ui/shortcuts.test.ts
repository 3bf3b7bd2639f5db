import { describe, expect, it } from "vitest";
import {
  isTypingTarget,
  SHORTCUTS,
  shortcutFor,
  type KeyLike,
  type ShortcutContext,
  type TargetLike,
} from "./shortcuts";

const BODY: TargetLike = { tagName: "BODY", closest: () => null };
const IDLE: ShortcutContext = { helpOpen: false, otherDialogOpen: false };

function press(key: string, extra: Partial<KeyLike> = {}, context: ShortcutContext = IDLE) {
  const event: KeyLike = {
    key,
    code: extra.code ?? "",
    ctrlKey: false,
    altKey: false,
    metaKey: false,
    shiftKey: false,
    target: BODY,
    ...extra,
  };
  return shortcutFor(event, context);
}

/** An element that sits inside an ancestor matching `inside` (a tiny stand-in for closest()). */
function element(tagName: string, props: Partial<TargetLike> = {}, inside = ""): TargetLike {
  return {
    tagName,
    closest: (selectors: string) => (inside !== "" && selectors.includes(inside) ? {} : null),
    ...props,
  };
}

describe("shortcutFor", () => {
  it("maps each letter to its action", () => {
    expect(press("m")).toBe("mic");
    expect(press("v")).toBe("camera");
    expect(press("c")).toBe("chat");
    expect(press("p")).toBe("people");
    expect(press("h")).toBe("hand");
    expect(press("s")).toBe("screen");
    expect(press("?", { shiftKey: true })).toBe("help");
  });

  it("ignores other keys", () => {
    for (const key of ["a", "l", "x", "1", " ", "Enter", "Tab", "ArrowDown", "/", "F1"]) {
      expect(press(key), key).toBeNull();
    }
  });

  it("leaves only with Shift+L, and Shift turns the other letters off", () => {
    expect(press("L", { shiftKey: true })).toBe("leave");
    expect(press("l")).toBeNull();
    expect(press("M", { shiftKey: true })).toBeNull();
    expect(press("C", { shiftKey: true })).toBeNull();
  });

  it("reads Caps Lock letters as the plain letters", () => {
    expect(press("M")).toBe("mic");
    expect(press("V")).toBe("camera");
    // Caps Lock on, Shift held: the browser reports "l" with Shift; still leave.
    expect(press("l", { shiftKey: true })).toBe("leave");
  });

  it("never fires with Ctrl, Alt or Meta (those are the browser's and the system's)", () => {
    expect(press("c", { ctrlKey: true })).toBeNull(); // copy
    expect(press("v", { metaKey: true })).toBeNull(); // paste
    expect(press("m", { altKey: true })).toBeNull();
    expect(press("L", { shiftKey: true, ctrlKey: true })).toBeNull();
    expect(press("?", { shiftKey: true, altKey: true })).toBeNull();
  });

  it("never fires while typing", () => {
    const typing: TargetLike[] = [
      element("INPUT"), // no type attribute: text
      element("INPUT", { type: "text" }),
      element("INPUT", { type: "search" }),
      element("INPUT", { type: "password" }),
      element("INPUT", { type: "email" }),
      element("input", { type: "number" }),
      element("TEXTAREA"),
      element("SELECT"),
      element("DIV", { isContentEditable: true }),
    ];
    for (const target of typing) {
      for (const key of ["m", "v", "c", "p", "h", "s", "?"]) {
        expect(press(key, { target }), `${key} in ${target.tagName} ${target.type ?? ""}`).toBeNull();
      }
      expect(press("L", { shiftKey: true, target })).toBeNull();
    }
  });

  it("still fires with focus on a button, a link, a checkbox or a range", () => {
    expect(press("m", { target: element("BUTTON") })).toBe("mic");
    expect(press("c", { target: element("A") })).toBe("chat");
    expect(press("v", { target: element("INPUT", { type: "checkbox" }) })).toBe("camera");
    expect(press("h", { target: element("INPUT", { type: "range" }) })).toBe("hand");
    expect(press("p", { target: null })).toBe("people");
  });

  it("leaves letters to an open menu or list box (type-ahead)", () => {
    expect(press("m", { target: element("LI", {}, '[role="menu"]') })).toBeNull();
    expect(press("m", { target: element("DIV", {}, '[role="listbox"]') })).toBeNull();
    expect(press("m", { target: element("DIV", {}, '[role="dialog"]') })).toBe("mic");
  });

  it("ignores a held key's repeats, IME composition and handled events", () => {
    expect(press("m", { repeat: true })).toBeNull();
    expect(press("m", { isComposing: true })).toBeNull();
    expect(press("m", { defaultPrevented: true })).toBeNull();
  });

  it("is silent while another dialog is open, and works with the help open", () => {
    const other = { helpOpen: false, otherDialogOpen: true };
    expect(press("m", {}, other)).toBeNull();
    expect(press("?", {}, other)).toBeNull();
    expect(press("Escape", {}, other)).toBeNull();
    const help = { helpOpen: true, otherDialogOpen: false };
    expect(press("m", {}, help)).toBe("mic");
  });

  it("closes the help with Escape, and Escape means nothing else to it", () => {
    expect(press("Escape", {}, { helpOpen: true, otherDialogOpen: false })).toBe("closeHelp");
    expect(press("Escape")).toBeNull();
    // Even from a text field: Escape is not typing.
    const field = element("INPUT");
    expect(press("Escape", { target: field }, { helpOpen: true, otherDialogOpen: false })).toBe("closeHelp");
  });

  it("uses the physical key when the layout types a non-Latin letter", () => {
    expect(press("ь", { code: "KeyM" })).toBe("mic"); // Russian layout, the M key
    expect(press("ψ", { code: "KeyC" })).toBe("chat"); // Greek layout, the C key
    expect(press("Д", { code: "KeyL", shiftKey: true })).toBe("leave");
    // A Latin layout's own letter wins over the physical place (AZERTY types "m" elsewhere).
    expect(press("m", { code: "Semicolon" })).toBe("mic");
    expect(press("a", { code: "KeyQ" })).toBeNull();
    // Not letters: digits and punctuation never borrow the physical key.
    expect(press("1", { code: "KeyM" })).toBeNull();
  });
});

describe("isTypingTarget", () => {
  it("knows text from non-text inputs", () => {
    expect(isTypingTarget(element("INPUT", { type: "url" }))).toBe(true);
    expect(isTypingTarget(element("INPUT", { type: "radio" }))).toBe(false);
    expect(isTypingTarget(element("INPUT", { type: "SUBMIT" }))).toBe(false);
    expect(isTypingTarget(element("BUTTON"))).toBe(false);
    expect(isTypingTarget(null)).toBe(false);
  });
});

describe("SHORTCUTS", () => {
  it("lists every action once, each key shown doing what shortcutFor does", () => {
    const actions = SHORTCUTS.map((s) => s.action);
    expect(new Set(actions).size).toBe(actions.length);
    for (const line of SHORTCUTS) {
      if (line.action === "closeHelp" || line.action === "help") continue;
      const shift = line.keys.includes("Shift");
      const key = line.keys[line.keys.length - 1] ?? "";
      expect(press(shift ? key : key.toLowerCase(), { shiftKey: shift })).toBe(line.action);
    }
  });
});
