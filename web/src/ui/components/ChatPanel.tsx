import { useEffect, useRef, useState, type FormEvent } from "react";
import type { ChatEntry } from "../../protocol";
import type { UnsentChat } from "../../room/chat";
import { Icon } from "./Icon";
import { LinkedText } from "./LinkedText";

interface Props {
  chat: readonly ChatEntry[];
  /** Sent but not yet delivered back by the server (for example while reconnecting). */
  unsent?: readonly UnsentChat[];
  selfId: string;
  /** How people in the room are shown ("Sam (2)"), by id; others keep the name they wrote under. */
  labels?: ReadonlyMap<string, string>;
  maxChars: number;
  onSend: (text: string) => boolean;
}

const time = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });

/** The room's chat: history, timestamps, auto-scroll, a box to write in. */
export function ChatPanel({ chat, unsent = [], selfId, labels, maxChars, onSend }: Props) {
  const [draft, setDraft] = useState("");
  const list = useRef<HTMLOListElement>(null);
  const stick = useRef(true);

  useEffect(() => {
    const el = list.current;
    if (el !== null && stick.current) el.scrollTop = el.scrollHeight;
  }, [chat, unsent]);

  const submit = (event: FormEvent) => {
    event.preventDefault();
    if (onSend(draft)) setDraft("");
  };

  return (
    <section className="chat-panel" aria-label="Chat">
      <ol
        ref={list}
        className="chat-list list-unstyled"
        role="log"
        aria-live="polite"
        aria-label="Chat messages"
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
      <form className="chat-form" onSubmit={submit}>
        <label htmlFor="chat-input" className="visually-hidden">
          Message
        </label>
        <input
          id="chat-input"
          data-testid="chat-input"
          className="form-control"
          placeholder="Send a message"
          autoComplete="off"
          maxLength={maxChars}
          value={draft}
          onChange={(e) => setDraft(e.target.value)}
        />
        <button
          type="submit"
          className="btn btn-primary"
          aria-label="Send message"
          data-testid="chat-send"
          disabled={draft.trim() === ""}
        >
          <Icon name="send" size={18} />
        </button>
      </form>
    </section>
  );
}
