import type { ReactNode } from "react";
import { useMenuButton } from "../hooks/menu";

export interface MenuItem {
  key: string;
  label: string;
  testId: string;
  danger?: boolean;
  onSelect: () => void;
}

interface Props {
  /** The button's accessible name ("Actions for Sam"). */
  label: string;
  testId: string;
  items: readonly MenuItem[];
  children: ReactNode;
}

/**
 * A menu button (WAI-ARIA Authoring Practices, "Menu Button"): Enter, Space or ArrowDown
 * open it on the first item, ArrowUp on the last; arrows, Home and End move; Escape closes
 * and gives focus back to the button; Tab or a click elsewhere closes it.
 */
export function MenuButton({ label, testId, items, children }: Props) {
  const { open, active, close, buttonProps, menuProps } = useMenuButton<HTMLButtonElement, HTMLUListElement>(
    items.length,
  );

  if (items.length === 0) return null;
  return (
    <div className="menu-button">
      <button
        {...buttonProps}
        className="btn btn-sm btn-link text-body menu-toggle"
        aria-label={label}
        title={label}
        data-testid={testId}
      >
        {children}
      </button>
      {open && (
        <ul {...menuProps} aria-label={label} className="dropdown-menu show menu-list">
          {items.map((item, i) => (
            <li key={item.key} role="none">
              <button
                type="button"
                role="menuitem"
                data-menu-item=""
                tabIndex={i === active ? 0 : -1}
                className={`dropdown-item ${item.danger ? "text-danger" : ""}`}
                data-testid={item.testId}
                onClick={() => {
                  close(true);
                  item.onSelect();
                }}
              >
                {item.label}
              </button>
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}
