/**
 * After the element that held the keyboard focus went away (a notice that closed itself, a
 * button that changed place), focus `selector` rather than leave focus on nothing (the page
 * body), which sends keyboard and screen reader users back to the top.
 */
export function refocus(selector: string): void {
  if (document.activeElement === null || document.activeElement === document.body)
    document.querySelector<HTMLElement>(selector)?.focus();
}
