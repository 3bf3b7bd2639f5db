import type { ReactNode } from "react";
import { navigate } from "../hooks/route";

/** A link inside the app: a real `<a href>` (keyboard, new tab) that navigates without reload. */
export function Link({
  to,
  className,
  testId,
  children,
}: {
  to: string;
  className?: string;
  testId?: string;
  children: ReactNode;
}) {
  return (
    <a
      href={to}
      className={className}
      data-testid={testId}
      onClick={(e) => {
        if (e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
        e.preventDefault();
        navigate(to);
      }}
    >
      {children}
    </a>
  );
}
