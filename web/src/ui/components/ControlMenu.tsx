import type { ReactNode } from "react";
import { useMenuButton } from "../hooks/menu";

export interface ControlMenuItem {
  key: string;
  /** The visible text (also the accessible name unless `ariaLabel` is given). */
  label: string;
  ariaLabel?: string;
  testId: string;
  /** Drawn before the label: an icon or an emoji. */
  glyph?: ReactNode;
  /** A choice among the group's items (menuitemradio); undefined for a plain action. */
  checked?: boolean;
  onSelect: () => void;
}

export interface ControlMenuGroup {
  key: string;
  /** Names the group for screen readers, and heads it. */
  label?: string;
  items: readonly ControlMenuItem[];
  /** Glyphs side by side without their text (the reactions). */
  row?: boolean;
}

interface Props {
  /** The button's accessible name ("Reactions", "More options"). */
  label: string;
  testId: string;
  icon: ReactNode;
  groups: readonly ControlMenuGroup[];
  /** Drawn on the button (an unread count). */
  badge?: ReactNode;
  /** Which edge of the button the menu lines up with. */
  align?: "start" | "end";
}

/**
 * A round control that opens a menu above the control bar (WAI-ARIA Authoring Practices,
 * "Menu Button"): Enter, Space or ArrowDown open it on the first item, ArrowUp on the last;
 * the arrows, Home and End move; Escape closes it and gives focus back to the button; Tab or
 * a click elsewhere closes it. Groups may be radio choices (menuitemradio, aria-checked).
 */
export function ControlMenu({ label, testId, icon, groups, badge, align = "end" }: Props) {
  const items = groups.flatMap((g) => g.items);
  const { open, active, close, buttonProps, menuProps } = useMenuButton<HTMLButtonElement, HTMLDivElement>(
    items.length,
  );

  if (items.length === 0) return null;
  // Each group's first item's place in the flat list the arrows move through.
  const starts = groups.map((_, g) => groups.slice(0, g).reduce((n, before) => n + before.items.length, 0));
  return (
    <div className="control-menu-anchor">
      <button
        {...buttonProps}
        className={`btn control ${open ? "btn-light" : "btn-secondary"}`}
        aria-label={label}
        title={label}
        data-testid={testId}
      >
        {icon}
        {badge}
      </button>
      {open && (
        <div {...menuProps} aria-label={label} className={`control-menu align-${align}`}>
          {groups.map((group, g) => (
            <div
              key={group.key}
              role="group"
              aria-label={group.label}
              className={`control-menu-group ${group.row ? "row-group" : ""}`}
            >
              {group.label && (
                <div className="control-menu-heading" aria-hidden="true">
                  {group.label}
                </div>
              )}
              <div className="control-menu-items">
                {group.items.map((item, i) => {
                  const at = (starts[g] ?? 0) + i;
                  return (
                    <button
                      key={item.key}
                      type="button"
                      role={item.checked === undefined ? "menuitem" : "menuitemradio"}
                      aria-checked={item.checked}
                      aria-label={item.ariaLabel}
                      title={group.row ? (item.ariaLabel ?? item.label) : undefined}
                      tabIndex={at === active ? 0 : -1}
                      className={`control-menu-item ${item.checked ? "checked" : ""}`}
                      data-menu-item=""
                      data-testid={item.testId}
                      onClick={() => {
                        close(true);
                        item.onSelect();
                      }}
                    >
                      {item.glyph !== undefined && (
                        <span className="control-menu-glyph" aria-hidden="true">
                          {item.glyph}
                        </span>
                      )}
                      {!group.row && <span className="control-menu-label">{item.label}</span>}
                      {item.checked !== undefined && (
                        <span className="control-menu-check" aria-hidden="true">
                          {item.checked ? "✓" : ""}
                        </span>
                      )}
                    </button>
                  );
                })}
              </div>
            </div>
          ))}
        </div>
      )}
    </div>
  );
}
