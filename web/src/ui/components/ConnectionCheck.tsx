import type { ConnectionCheck as Check } from "../../room/check";
import { connectionSummary, probeLines, type Verdict } from "../connectivity";
import "../styles/access.css";

/**
 * The pre-join connection check: one plain sentence (`connection-summary`, with
 * `data-verdict`), and each network path in detail behind a "Connection details" disclosure
 * (`connection-details`, holding `connection-check` and its `check-*` lines).
 */
export function ConnectionCheck({ check }: { check: Check }) {
  const summary = connectionSummary(check);
  return (
    <div className="connection small">
      <p
        className="connection-summary mb-1"
        role="status"
        data-testid="connection-summary"
        data-verdict={summary.readiness}
      >
        {summary.text}
      </p>
      <details className="connection-details" data-testid="connection-details">
        <summary>Connection details</summary>
        <Details check={check} />
      </details>
    </div>
  );
}

/** Which network paths this browser has, one line each. */
function Details({ check }: { check: Check }) {
  if (check.step === "checking") {
    return (
      <p className="text-body-secondary mt-2 mb-0" data-testid="connection-check" data-step="checking">
        Gathering this device&apos;s network addresses…
      </p>
    );
  }
  if (check.step === "unavailable") {
    return (
      <p className="text-body-secondary mt-2 mb-0" data-testid="connection-check" data-step="unavailable">
        The connection check could not ask the server for its relay settings.
      </p>
    );
  }
  return (
    <ul className="list-unstyled" data-testid="connection-check" data-step="done">
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
