const COLORS = ["#5c6bc0", "#26a69a", "#ef6c00", "#8e24aa", "#00897b", "#c2185b", "#3949ab", "#6d4c41"];

function colorOf(name: string): string {
  let hash = 0;
  for (const ch of name) hash = (hash * 31 + (ch.codePointAt(0) ?? 0)) >>> 0;
  return COLORS[hash % COLORS.length] ?? "#5c6bc0";
}

/** A round initial in a colour derived from the name. */
export function Avatar({ name, size = "lg" }: { name: string; size?: "sm" | "lg" }) {
  const initial = [...name.trim()][0]?.toUpperCase() ?? "?";
  return (
    <span className={`avatar avatar-${size}`} style={{ backgroundColor: colorOf(name) }} aria-hidden="true">
      {initial}
    </span>
  );
}
