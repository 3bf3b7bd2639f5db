/**
 * Room keyboard shortcuts, as a pure function of a key event: which action a key press asks
 * for, or null. No DOM, no React: the `useRoomShortcuts` hook (ui/hooks/shortcuts.ts) feeds it
 * real `keydown` events and the state of the page's dialogs.
 *
 * A shortcut never fires while the person is typing (a text field, a text area, a select, an
 * editable element), inside an open menu, with Ctrl, Alt or Meta held (those belong to the
 * browser and the system), for a held-down key's repeats, during IME composition, or while a
 * dialog other than the shortcut help is open.
 */

/** What a shortcut does. `help` opens the shortcut help; `closeHelp` closes it. */
export type ShortcutAction =
  "mic" | "camera" | "chat" | "people" | "hand" | "screen" | "leave" | "help" | "closeHelp";

/** The actions a room provides handlers for (help is the hook's own). */
export type RoomAction = Exclude<ShortcutAction, "help" | "closeHelp">;

/** The part of an element the typing check reads (an `Element` fits). */
export interface TargetLike {
  readonly tagName?: string;
  readonly type?: string;
  readonly isContentEditable?: boolean;
  closest?(selectors: string): unknown;
}

/** The part of a `KeyboardEvent` the shortcuts read (a `KeyboardEvent` fits). */
export interface KeyLike {
  readonly key: string;
  readonly code?: string;
  readonly ctrlKey: boolean;
  readonly altKey: boolean;
  readonly metaKey: boolean;
  readonly shiftKey: boolean;
  readonly repeat?: boolean;
  readonly isComposing?: boolean;
  readonly defaultPrevented?: boolean;
  readonly target: TargetLike | EventTarget | null;
}

export interface ShortcutContext {
  /** The shortcut help is open. */
  readonly helpOpen: boolean;
  /** Another modal dialog is open (an incoming call, "Leave the meeting?"): no shortcuts. */
  readonly otherDialogOpen: boolean;
}

/** One line of the help sheet: the keys as shown, and what they do. */
export interface ShortcutLine {
  readonly action: ShortcutAction;
  readonly keys: readonly string[];
  readonly text: string;
}

/** The help sheet, in the order shown. */
export const SHORTCUTS: readonly ShortcutLine[] = [
  { action: "mic", keys: ["M"], text: "Turn the microphone on or off" },
  { action: "camera", keys: ["V"], text: "Turn the camera on or off" },
  { action: "chat", keys: ["C"], text: "Open or close the chat" },
  { action: "people", keys: ["P"], text: "Open or close the participant list" },
  { action: "hand", keys: ["H"], text: "Raise or lower your hand" },
  { action: "screen", keys: ["S"], text: "Share your screen or stop sharing" },
  { action: "leave", keys: ["Shift", "L"], text: "Leave the meeting (asks first)" },
  { action: "help", keys: ["?"], text: "Show these shortcuts" },
  { action: "closeHelp", keys: ["Esc"], text: "Close this list" },
];

/** Plain letters, pressed without Shift. */
const LETTERS: Readonly<Record<string, RoomAction>> = {
  m: "mic",
  v: "camera",
  c: "chat",
  p: "people",
  h: "hand",
  s: "screen",
};

/** Input types that take no typed text: a letter pressed on them is not typing. */
const NOT_TEXT_INPUTS = new Set([
  "button",
  "checkbox",
  "color",
  "file",
  "image",
  "radio",
  "range",
  "reset",
  "submit",
]);

/** Inside these, letters move or type-ahead (WAI-ARIA menus, list boxes, combo boxes). */
const KEY_CAPTURING_ROLES = '[role="menu"],[role="menubar"],[role="listbox"],[role="combobox"]';

/** Whether a key pressed with `target` focused goes into text (or a widget that reads letters). */
export function isTypingTarget(target: TargetLike | EventTarget | null): boolean {
  if (target === null || typeof target !== "object") return false;
  const t = target as TargetLike;
  if (t.isContentEditable === true) return true;
  const tag = (t.tagName ?? "").toUpperCase();
  if (tag === "TEXTAREA" || tag === "SELECT") return true;
  if (tag === "INPUT") return !NOT_TEXT_INPUTS.has((t.type ?? "text").toLowerCase());
  return typeof t.closest === "function" && Boolean(t.closest(KEY_CAPTURING_ROLES));
}

/**
 * The letter a key press means, lower case: `event.key` when it is a Latin letter, else the
 * physical key (`KeyM`) when the layout types a non-Latin letter there (Cyrillic, Greek…),
 * so the shortcuts work whatever the keyboard layout. Null for anything else.
 */
function letterOf(event: KeyLike): string | null {
  const key = event.key;
  if (/^[a-z]$/i.test(key)) return key.toLowerCase();
  if ([...key].length === 1 && /\p{L}/u.test(key) && !/^[\x20-\x7e]$/.test(key)) {
    const physical = /^Key([A-Z])$/.exec(event.code ?? "")?.[1];
    if (physical !== undefined) return physical.toLowerCase();
  }
  return null;
}

/** The action a key press asks for, or null when it is not a shortcut here and now. */
export function shortcutFor(event: KeyLike, context: ShortcutContext): ShortcutAction | null {
  if (event.defaultPrevented === true || event.isComposing === true) return null;
  if (context.otherDialogOpen) return null;
  if (event.key === "Escape") return context.helpOpen ? "closeHelp" : null;
  if (event.repeat === true) return null;
  if (event.ctrlKey || event.altKey || event.metaKey) return null;
  if (isTypingTarget(event.target)) return null;
  // "?" is Shift+/ on some layouts and a key of its own on others: read the character.
  if (event.key === "?") return "help";
  const letter = letterOf(event);
  if (letter === null) return null;
  if (event.shiftKey) return letter === "l" ? "leave" : null;
  // Caps Lock gives "M" without Shift: still the plain letter.
  return LETTERS[letter] ?? null;
}
