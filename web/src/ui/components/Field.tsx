import type { HTMLInputAutoCompleteAttribute } from "react";

interface Props {
  id: string;
  label: string;
  value: string;
  onChange: (value: string) => void;
  error?: string | null;
  hint?: string;
  type?: "text" | "password";
  autoComplete?: HTMLInputAutoCompleteAttribute;
  maxLength?: number;
  minLength?: number;
}

/** A labelled input with its hint and its error, both announced with the field. */
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
  const described = [hint ? `${id}-hint` : "", error ? `${id}-error` : ""].filter(Boolean).join(" ");
  return (
    <div className="mb-3">
      <label htmlFor={id} className="form-label">
        {label}
      </label>
      <input
        id={id}
        type={type}
        className={`form-control ${error ? "is-invalid" : ""}`}
        value={value}
        required
        autoComplete={autoComplete}
        maxLength={maxLength}
        minLength={minLength}
        aria-invalid={error ? true : undefined}
        aria-describedby={described || undefined}
        onChange={(e) => onChange(e.target.value)}
      />
      {hint && (
        <div id={`${id}-hint`} className="form-text">
          {hint}
        </div>
      )}
      {error && (
        <div id={`${id}-error`} className="invalid-feedback" data-testid={`${id}-error`}>
          {error}
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
