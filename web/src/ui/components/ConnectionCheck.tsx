import type { ConnectionCheck as Check } from "../../room/check";
import { probeLines, type Verdict } from "../connectivity";

/** Which network paths this browser has, in words: from the pre-join connection check. */
export function ConnectionCheck({ check }: { check: Check }) {
  if (check.step === "checking") {
    return (
      <p className="small text-body-secondary mb-3" data-testid="connection-check" data-step="checking">
        Checking your connection…
      </p>
    );
  }
  if (check.step === "unavailable") {
    return (
      <p className="small text-body-secondary mb-3" data-testid="connection-check" data-step="unavailable">
        The connection check could not ask the server for its relay settings.
      </p>
    );
  }
  return (
    <ul className="list-unstyled small mb-3" data-testid="connection-check" data-step="done">
      {probeLines(check.result).map((line) => (
        <li key={line.key} data-testid={`check-${line.key}`} data-verdict={line.verdict}>
          <span aria-hidden="true">{MARK[line.verdict]} </span>
          {line.text}
        </li>
      ))}
    </ul>
  );
}

const MARK: Record<Verdict, string> = { ok: "✓", missing: "–", problem: "✗", off: "·" };
