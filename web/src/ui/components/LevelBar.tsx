/** A microphone level meter: a bar that fills with the level (0..1). */
export function LevelBar({ level, label }: { level: number; label: string }) {
  const pct = Math.round(Math.min(1, level) * 100);
  return (
    <div
      className="level-bar"
      role="meter"
      aria-label={label}
      aria-valuemin={0}
      aria-valuemax={100}
      aria-valuenow={pct}
    >
      <div className="level-fill" style={{ width: `${pct}%` }} />
    </div>
  );
}
