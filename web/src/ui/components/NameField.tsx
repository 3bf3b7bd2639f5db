import { MAX_NAME_CHARS, nameLength } from "../../account/account";
import type { DisplayName } from "../hooks/name";
import { Link } from "./Link";
import "../styles/access.css";

interface Props extends DisplayName {
  id: string;
  className?: string;
  placeholder?: string;
}

/** Whether the server would refuse `name` for its length (see `nameLength`). */
export function nameTooLong(name: string): boolean {
  return nameLength(name) > MAX_NAME_CHARS;
}

/**
 * "Your name": typed by a guest; for a signed-in person, the account's display name, read-only,
 * with the way to change it (the server uses the account's name whatever the page sends).
 * Its length is counted as the server counts it (code points, not UTF-16 units): a counter
 * appears near the limit, and past it the field says so instead of cutting the name short.
 */
export function NameField({ id, name, setName, account, className = "", placeholder }: Props) {
  const hint = `${id}-hint`;
  const count = `${id}-count`;
  const length = nameLength(name);
  const over = account === null && length > MAX_NAME_CHARS;
  const described = [account !== null ? hint : "", over || length > MAX_NAME_CHARS - 16 ? count : ""]
    .filter(Boolean)
    .join(" ");
  return (
    <div className={className}>
      <label htmlFor={id} className="form-label">
        Your name
      </label>
      <input
        id={id}
        className={`form-control ${over ? "is-invalid" : ""}`}
        autoComplete="name"
        required
        placeholder={placeholder}
        value={name}
        readOnly={account !== null}
        aria-invalid={over ? true : undefined}
        aria-describedby={described || undefined}
        onChange={(e) => setName(e.target.value)}
      />
      {account !== null && (
        <div id={hint} className="form-text">
          Your account&apos;s name. <Link to="/account">Change your name</Link>
        </div>
      )}
      {account === null && length > MAX_NAME_CHARS - 16 && (
        <div
          id={count}
          className={`form-text char-count ${over ? "text-danger-emphasis" : ""}`}
          data-testid={`${id}-count`}
        >
          {over
            ? `Too long: a name has at most ${MAX_NAME_CHARS} characters (this one has ${length}).`
            : `${length} of ${MAX_NAME_CHARS} characters`}
        </div>
      )}
    </div>
  );
}
