import type { DisplayName } from "../hooks/name";
import { Link } from "./Link";

interface Props extends DisplayName {
  id: string;
  className?: string;
  placeholder?: string;
}

/**
 * "Your name": typed by a guest; for a signed-in person, the account's display name, read-only,
 * with the way to change it (the server uses the account's name whatever the page sends).
 */
export function NameField({ id, name, setName, account, className = "", placeholder }: Props) {
  const hint = `${id}-hint`;
  return (
    <div className={className}>
      <label htmlFor={id} className="form-label">
        Your name
      </label>
      <input
        id={id}
        className="form-control"
        autoComplete="name"
        required
        maxLength={64}
        placeholder={placeholder}
        value={name}
        readOnly={account !== null}
        aria-describedby={account !== null ? hint : undefined}
        onChange={(e) => setName(e.target.value)}
      />
      {account !== null && (
        <div id={hint} className="form-text">
          Your account&apos;s name. <Link to="/account">Change your name</Link>
        </div>
      )}
    </div>
  );
}
