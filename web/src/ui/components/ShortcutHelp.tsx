import { useEffect, useId, useRef, type KeyboardEvent, type ReactNode } from "react";
import { SHORTCUT_HELP_ATTRIBUTE } from "../hooks/shortcuts";
import { SHORTCUTS } from "../shortcuts";
import "../styles/access.css";

const FOCUSABLE =
  'a[href], button:not([disabled]), input:not([disabled]), select, textarea, [tabindex]:not([tabindex="-1"])';

interface ModalProps {
  onClose: () => void;
  title: string;
  testId: string;
  role?: "dialog" | "alertdialog";
  /** Extra attributes on the `<dialog>` (e.g. the shortcut help's marker). */
  marker?: Record<string, string>;
  children: ReactNode;
}

/**
 * A modal `<dialog>` opened with `showModal()` while mounted: the rest of the page is inert
 * (focus stays inside, HTML "modal dialogs"), Escape closes it without reaching the page's
 * own Escape handling (a panel behind stays open), and focus goes back to what had it.
 */
function Modal({ onClose, title, testId, role = "dialog", marker = {}, children }: ModalProps) {
  const ref = useRef<HTMLDialogElement>(null);
  const titleId = useId();
  useEffect(() => {
    const dialog = ref.current;
    if (dialog === null) return;
    const opener = document.activeElement instanceof HTMLElement ? document.activeElement : null;
    if (!dialog.open) dialog.showModal();
    return () => {
      if (dialog.open) dialog.close();
      if (opener?.isConnected) opener.focus();
    };
  }, []);
  const onKeyDown = (event: KeyboardEvent) => {
    if (event.key === "Tab") {
      // The page behind is inert; keep Tab on the dialog's own controls too, rather than
      // letting it leave for the browser's toolbar.
      const focusable = [...(ref.current?.querySelectorAll<HTMLElement>(FOCUSABLE) ?? [])];
      const first = focusable[0];
      const last = focusable[focusable.length - 1];
      if (first === undefined || last === undefined) return;
      const at = document.activeElement;
      if (event.shiftKey && (at === first || !ref.current?.contains(at))) {
        event.preventDefault();
        last.focus();
      } else if (!event.shiftKey && (at === last || !ref.current?.contains(at))) {
        event.preventDefault();
        first.focus();
      }
      return;
    }
    if (event.key !== "Escape") return;
    event.stopPropagation();
    event.preventDefault();
    onClose();
  };
  return (
    <dialog
      ref={ref}
      className="salon-modal"
      role={role === "alertdialog" ? "alertdialog" : undefined}
      aria-labelledby={titleId}
      data-testid={testId}
      onKeyDown={onKeyDown}
      onCancel={(event) => {
        event.preventDefault(); // the page decides: onClose unmounts the dialog
        onClose();
      }}
      onClick={(event) => {
        if (event.target === ref.current) onClose(); // a click on the backdrop
      }}
      {...marker}
    >
      <div className="salon-modal-body">
        <h2 id={titleId} className="h5 mb-3">
          {title}
        </h2>
        {children}
      </div>
    </dialog>
  );
}

/**
 * The keyboard shortcut sheet ("?"): a modal dialog `data-testid="shortcut-help"` listing
 * every shortcut; Escape, the Close button or a click outside close it, and focus returns to
 * what had it. Renders nothing while closed.
 */
export function ShortcutHelp({ open, onClose }: { open: boolean; onClose: () => void }) {
  if (!open) return null;
  return (
    <Modal
      onClose={onClose}
      title="Keyboard shortcuts"
      testId="shortcut-help"
      marker={{ [SHORTCUT_HELP_ATTRIBUTE]: "" }}
    >
      <>
        <table className="shortcut-table mb-3">
          <tbody>
            {SHORTCUTS.map((line) => (
              <tr key={line.action} data-shortcut={line.action}>
                <th scope="row">
                  {line.keys.map((key, i) => (
                    <span key={key}>
                      {i > 0 && <span aria-hidden="true"> + </span>}
                      <kbd>{key}</kbd>
                    </span>
                  ))}
                </th>
                <td>{line.text}</td>
              </tr>
            ))}
          </tbody>
        </table>
        <p className="small text-body-secondary">
          Shortcuts do nothing while you type in the chat or another field.
        </p>
        <div className="d-flex justify-content-end">
          <button
            type="button"
            className="btn btn-primary"
            data-testid="shortcut-help-close"
            autoFocus
            onClick={onClose}
          >
            Close
          </button>
        </div>
      </>
    </Modal>
  );
}

/**
 * "Leave the meeting?" after Shift+L: Leave (`leave-confirm-yes`) or Stay (`leave-confirm-no`,
 * focused first, and also Escape). A modal `data-testid="leave-confirm"`; nothing while closed.
 */
export function LeaveConfirm({
  open,
  onLeave,
  onStay,
}: {
  open: boolean;
  onLeave: () => void;
  onStay: () => void;
}) {
  if (!open) return null;
  return (
    <Modal onClose={onStay} title="Leave the meeting?" testId="leave-confirm" role="alertdialog">
      <>
        <p className="text-body-secondary">You can come back with the same link while the meeting goes on.</p>
        <div className="d-flex justify-content-end gap-2">
          <button
            type="button"
            className="btn btn-outline-light"
            data-testid="leave-confirm-no"
            autoFocus
            onClick={onStay}
          >
            Stay
          </button>
          <button type="button" className="btn btn-danger" data-testid="leave-confirm-yes" onClick={onLeave}>
            Leave
          </button>
        </div>
      </>
    </Modal>
  );
}
