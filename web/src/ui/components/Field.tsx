import type { HTMLInputAutoCompleteAttribute } from "react";
import { nameLength } from "../../account/account";
import "../styles/access.css";

interface Props {
  id: string;
  label: string;
  value: string;
  onChange: (value: string) => void;
  error?: string | null;
  hint?: string;
  type?: "text" | "password";
  autoComplete?: HTMLInputAutoCompleteAttribute;
  /**
   * The most characters, counted as the server counts names (`nameLength`: code points after
   * NFC and trimming), not the UTF-16 units of an input's `maxLength`. A counter shows near
   * it; past it the field says so (the text is never cut short).
   */
  maxLength?: number;
  minLength?: number;
}

/** A labelled input with its hint, its length near a limit, and its error, announced with it. */
export function Field({
  id,
  label,
  value,
  onChange,
  error = null,
  hint,
  type = "text",
  autoComplete,
  maxLength,
  minLength,
}: Props) {
  const length = maxLength === undefined ? 0 : nameLength(value);
  const near = maxLength !== undefined && length > maxLength - 16;
  const over = maxLength !== undefined && length > maxLength;
  const shownError = error ?? (over ? `At most ${maxLength} characters: this has ${length}.` : null);
  const described = [
    hint ? `${id}-hint` : "",
    near && !over ? `${id}-count` : "",
    shownError ? `${id}-error` : "",
  ]
    .filter(Boolean)
    .join(" ");
  return (
    <div className="mb-3">
      <label htmlFor={id} className="form-label">
        {label}
      </label>
      <input
        id={id}
        type={type}
        className={`form-control ${shownError ? "is-invalid" : ""}`}
        value={value}
        required
        autoComplete={autoComplete}
        minLength={minLength}
        aria-invalid={shownError ? true : undefined}
        aria-describedby={described || undefined}
        onChange={(e) => onChange(e.target.value)}
      />
      {hint && (
        <div id={`${id}-hint`} className="form-text">
          {hint}
        </div>
      )}
      {near && !over && (
        <div id={`${id}-count`} className="form-text char-count" data-testid={`${id}-count`}>
          {length} of {maxLength} characters
        </div>
      )}
      {shownError && (
        <div id={`${id}-error`} className="invalid-feedback" data-testid={`${id}-error`}>
          {shownError}
        </div>
      )}
    </div>
  );
}

/** A whole-form problem (wrong password, too many attempts), announced when it appears. */
export function FormError({ text }: { text: string | null }) {
  if (!text) return null;
  return (
    <div className="alert alert-danger py-2" role="alert" data-testid="form-error">
      {text}
    </div>
  );
}
