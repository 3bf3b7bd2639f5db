import { useEffect, useLayoutEffect, useRef, type FormEvent, type KeyboardEvent } from "react";
import type { ChatEntry } from "../../protocol";
import { chatKeyAction, chatLength, type UnsentChat } from "../../room/chat";
import "../styles/chat.css";
import { Icon } from "./Icon";
import { LinkedText } from "./LinkedText";

interface Props {
  chat: readonly ChatEntry[];
  /** Sent but not yet delivered back by the server (for example while reconnecting). */
  unsent?: readonly UnsentChat[];
  selfId: string;
  /** How people in the room are shown ("Sam (2)"), by id; others keep the name they wrote under. */
  labels?: ReadonlyMap<string, string>;
  /** The server's limit (`limits.max_chat_chars`), in code points as the server counts. */
  maxChars: number;
  /** Send a message; true when it was taken (the box is then emptied). */
  onSend: (text: string) => boolean;
  /** What is written and not sent yet: kept by the room, so closing the panel loses nothing. */
  draft: string;
  onDraft: (text: string) => void;
}

/** Below this many characters left, the box says how many remain. */
const COUNT_FROM = 100;

const time = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });

/**
 * The room's chat: history, timestamps, auto-scroll, and a box to write in that takes the
 * focus when the panel opens. Enter sends, Shift+Enter starts a new line; the box grows to
 * about five lines, and messages keep their line breaks.
 */
export function ChatPanel({
  chat,
  unsent = [],
  selfId,
  labels,
  maxChars,
  onSend,
  draft,
  onDraft: setDraft,
}: Props) {
  const list = useRef<HTMLOListElement>(null);
  const box = useRef<HTMLTextAreaElement>(null);
  const stick = useRef(true);
  const left = maxChars - chatLength(draft);
  const canSend = draft.trim() !== "" && left >= 0;

  useEffect(() => {
    const el = list.current;
    if (el !== null && stick.current) el.scrollTop = el.scrollHeight;
  }, [chat, unsent]);

  // The box is as tall as its text; CSS caps it at about five lines, then it scrolls.
  useLayoutEffect(() => {
    const el = box.current;
    if (el === null) return;
    el.style.height = "auto";
    el.style.height = `${el.scrollHeight + el.offsetHeight - el.clientHeight}px`;
  }, [draft]);

  const send = () => {
    if (canSend && onSend(draft)) setDraft("");
  };
  const submit = (event: FormEvent) => {
    event.preventDefault();
    send();
  };
  const onKeyDown = (event: KeyboardEvent<HTMLTextAreaElement>) => {
    const action = chatKeyAction({
      key: event.key,
      shiftKey: event.shiftKey,
      altKey: event.altKey,
      ctrlKey: event.ctrlKey,
      metaKey: event.metaKey,
      // keyCode 229: an input method holds the key (older Safari does not set isComposing).
      isComposing: event.nativeEvent.isComposing || event.keyCode === 229,
    });
    if (action !== "send") return;
    event.preventDefault();
    send();
  };

  return (
    <section className="chat-panel" aria-label="Chat">
      {/* The live region wraps the list: a list's items must be its own children (axe "listitem"). */}
      <div className="chat-log" role="log" aria-live="polite" aria-label="Chat messages">
        <ol
          ref={list}
          className="chat-list list-unstyled"
          onScroll={(e) => {
            const el = e.currentTarget;
            stick.current = el.scrollHeight - el.scrollTop - el.clientHeight < 40;
          }}
        >
          {chat.length === 0 && unsent.length === 0 && (
            <li className="text-body-secondary small p-2">No messages yet. Say hello!</li>
          )}
          {chat.map((entry) => (
            <li
              key={entry.seq}
              className={`chat-entry ${entry.from === selfId ? "mine" : ""}`}
              data-testid="chat-entry"
            >
              <div className="chat-meta">
                <span className="chat-name">
                  {entry.from === selfId ? "You" : (labels?.get(entry.from) ?? entry.name)}
                </span>
                <time dateTime={new Date(entry.ts).toISOString()}>{time.format(entry.ts)}</time>
              </div>
              <div className="chat-text">
                <LinkedText text={entry.text} />
              </div>
            </li>
          ))}
          {unsent.map((draft) => (
            <li key={draft.id} className="chat-entry mine unsent" data-testid="chat-unsent">
              <div className="chat-meta">
                <span className="chat-name">You</span>
                <span>Sending…</span>
              </div>
              <div className="chat-text">
                <LinkedText text={draft.text} />
              </div>
            </li>
          ))}
        </ol>
      </div>
      <form className="chat-form" onSubmit={submit}>
        <label htmlFor="chat-input" className="visually-hidden">
          Message
        </label>
        <div className="chat-box">
          <textarea
            ref={box}
            id="chat-input"
            data-testid="chat-input"
            className="form-control"
            placeholder="Send a message"
            aria-describedby={left > COUNT_FROM ? "chat-keys" : "chat-keys chat-count"}
            aria-invalid={left < 0}
            autoComplete="off"
            autoFocus
            rows={1}
            value={draft}
            onChange={(e) => setDraft(e.target.value)}
            onKeyDown={onKeyDown}
          />
          <span id="chat-keys" className="visually-hidden">
            Enter sends the message; Shift and Enter start a new line.
          </span>
          <div
            id="chat-count"
            className={`chat-count ${left < 0 ? "text-danger" : "text-body-secondary"}`}
            data-testid="chat-count"
            hidden={left > COUNT_FROM}
          >
            {left < 0
              ? `${-left} ${-left === 1 ? "character" : "characters"} too many`
              : `${left} ${left === 1 ? "character" : "characters"} left`}
          </div>
        </div>
        <button
          type="submit"
          className="btn btn-primary"
          aria-label="Send message"
          data-testid="chat-send"
          disabled={!canSend}
        >
          <Icon name="send" size={18} />
        </button>
      </form>
    </section>
  );
}
