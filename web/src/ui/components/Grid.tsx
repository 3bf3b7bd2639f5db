import type { ReactNode } from "react";

/** A responsive grid: columns follow the number of tiles. */
export function Grid({ count, children }: { count: number; children: ReactNode }) {
  const cols = count <= 1 ? 1 : count <= 4 ? 2 : count <= 9 ? 3 : 4;
  const rows = Math.ceil(count / cols);
  return (
    <div className={`tile-grid cols-${cols} rows-${rows}`} data-testid="grid">
      {children}
    </div>
  );
}
