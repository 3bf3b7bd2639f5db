import { useEffect, useId, useRef, useState, type KeyboardEvent } from "react";

/**
 * The keyboard and focus behaviour of a menu button (WAI-ARIA Authoring Practices, "Menu
 * Button"), shared by the participant menu and the control bar's menus: Enter, Space or
 * ArrowDown open it on the first item, ArrowUp on the last; ArrowDown/ArrowRight and
 * ArrowUp/ArrowLeft move round, Home and End jump; Escape closes it and gives focus back to
 * the button (and is not seen by the room's own Escape); Tab or a pointer elsewhere closes it.
 *
 * `count` is the number of items; the menu element's items are its `[data-menu-item]`
 * descendants, in order.
 */
export function useMenuButton<B extends HTMLElement, M extends HTMLElement>(count: number) {
  const [open, setOpen] = useState(false);
  const [active, setActive] = useState(0);
  const button = useRef<B>(null);
  const menu = useRef<M>(null);
  const id = useId();

  useEffect(() => {
    if (!open) return;
    menu.current?.querySelectorAll<HTMLElement>("[data-menu-item]")[active]?.focus();
  }, [open, active]);

  useEffect(() => {
    if (!open) return;
    const away = (event: PointerEvent) => {
      const target = event.target as Node;
      if (!menu.current?.contains(target) && !button.current?.contains(target)) setOpen(false);
    };
    document.addEventListener("pointerdown", away);
    return () => document.removeEventListener("pointerdown", away);
  }, [open]);

  const show = (at: number) => {
    setActive(at);
    setOpen(true);
  };
  const close = (refocus: boolean) => {
    setOpen(false);
    if (refocus) button.current?.focus();
  };
  const toggle = () => (open ? close(false) : show(0));

  const onButtonKey = (event: KeyboardEvent) => {
    if (event.key === "ArrowDown") show(0);
    else if (event.key === "ArrowUp") show(count - 1);
    else return;
    event.preventDefault();
  };

  const onMenuKey = (event: KeyboardEvent) => {
    const last = count - 1;
    const next = active >= last ? 0 : active + 1;
    const previous = active <= 0 ? last : active - 1;
    const moves: Record<string, number> = {
      ArrowDown: next,
      ArrowRight: next,
      ArrowUp: previous,
      ArrowLeft: previous,
      Home: 0,
      End: last,
    };
    const to = moves[event.key];
    if (to !== undefined) {
      event.preventDefault();
      setActive(to);
    } else if (event.key === "Escape") {
      event.preventDefault(); // the room's own Escape (close the panel) leaves it alone
      close(true);
    } else if (event.key === "Tab") {
      setOpen(false);
    }
  };

  /** What the button element takes, besides its look and name. */
  const buttonProps = {
    ref: button,
    type: "button" as const,
    "aria-haspopup": "menu" as const,
    "aria-expanded": open,
    "aria-controls": open ? id : undefined,
    onClick: toggle,
    onKeyDown: onButtonKey,
  };
  /** What the menu element takes, besides its look and name. */
  const menuProps = { ref: menu, id, role: "menu", onKeyDown: onMenuKey };
  return { open, active, close, buttonProps, menuProps };
}
