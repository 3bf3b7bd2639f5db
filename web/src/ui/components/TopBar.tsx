import type { ReactNode } from "react";
import { navigate } from "../hooks/route";
import { Icon } from "./Icon";

/** The slim bar above the pre-join and call pages: the brand (home) and a caption. */
export function TopBar({ children }: { children?: ReactNode }) {
  return (
    <header className="top-bar">
      <a
        href="/"
        className="brand text-reset text-decoration-none"
        data-testid="brand-home"
        onClick={(e) => {
          e.preventDefault();
          navigate("/");
        }}
      >
        <span className="brand-mark" aria-hidden="true">
          <Icon name="camera" size={20} />
        </span>
        Salon
      </a>
      <div className="ms-auto text-body-secondary small text-truncate">{children}</div>
    </header>
  );
}
