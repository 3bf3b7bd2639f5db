/**
 * Telling people apart on screen. A room name need not be unique (docs/PROTOCOL.md, names:
 * only names reachable for calls are), so two people may both be "Sam". Every client labels
 * them the same way, from the room's join order: the first keeps the name, the next is
 * "Sam (2)", then "Sam (3)". Names that merely look alike ("sam", "Ｓａｍ", "Sam" with an
 * invisible joiner) count as the same name.
 */

/** Invisible characters and blanks that make two names look the same on screen. */
const INVISIBLE = /[\p{Default_Ignorable_Code_Point}\p{White_Space}\u2800\u3164\uFFA0\u115F\u1160]/gu;

/** The key two names are compared in: NFKC, lower case, without invisible characters. */
export function nameKey(name: string): string {
  return name.normalize("NFKC").replace(INVISIBLE, "").toLowerCase();
}

export interface Named {
  readonly id: string;
  readonly name: string;
}

/**
 * A label per id that tells the people apart, for people listed in join order (earliest
 * first). A label never equals another person's name either: with "Sam", "Sam" and a third
 * person really called "Sam (2)", the second Sam is "Sam (3)".
 */
export function distinctLabels(people: readonly Named[]): Map<string, string> {
  const labels = new Map<string, string>();
  const names = new Set(people.map((p) => nameKey(p.name)));
  const taken = new Set<string>();
  for (const person of people) {
    const key = nameKey(person.name);
    let label = person.name;
    if (taken.has(key)) {
      let n = 2;
      while (names.has(nameKey(`${person.name} (${n})`)) || taken.has(nameKey(`${person.name} (${n})`))) n++;
      label = `${person.name} (${n})`;
    }
    taken.add(nameKey(label));
    labels.set(person.id, label);
  }
  return labels;
}

/** Raised hands first, by their place in the queue; then everyone else as listed. */
export function handsFirst<T extends { readonly hand: number | null }>(people: readonly T[]): T[] {
  const raised = people.filter((p) => p.hand !== null).sort((a, b) => (a.hand ?? 0) - (b.hand ?? 0));
  return [...raised, ...people.filter((p) => p.hand === null)];
}
