/**
 * "Did you mean" for names a person typed: the known names closest to the unknown one by edit distance
 * (Damerau-Levenshtein, optimal string alignment: a swapped pair of letters costs one edit), case ignored.
 */

/** The number of single-letter inserts, deletes, substitutions and adjacent swaps that turn `a` into `b`. */
export function editDistance(a: string, b: string): number {
  const rows = a.length + 1;
  const cols = b.length + 1;
  const d: number[][] = Array.from({ length: rows }, (_, i) => Array.from({ length: cols }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i < rows; i++) {
    for (let j = 1; j < cols; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i]![j] = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i]![j] = Math.min(d[i]![j]!, d[i - 2]![j - 2]! + 1);
    }
  }
  return d[a.length]![b.length]!;
}

/**
 * The known name `typed` most likely meant, or undefined when none is close: within a third of the longer
 * name's length in edits (at least one), or one that starts with what was typed (`timeout` -> `timeout_ms`).
 */
export function closestName(typed: string, known: Iterable<string>): string | undefined {
  const lower = typed.toLowerCase();
  let best: { name: string; distance: number } | undefined;
  for (const name of known) {
    const candidate = name.toLowerCase();
    if (candidate === lower) return name;
    const distance = candidate.startsWith(lower) && lower.length >= 3 ? 1 : editDistance(lower, candidate);
    const allowed = Math.max(1, Math.floor(Math.max(lower.length, candidate.length) / 3));
    if (distance <= allowed && (!best || distance < best.distance)) best = { name, distance };
  }
  return best?.name;
}

/** ` did you mean "x"?` or nothing: appended to a problem that names an unknown name. */
export function didYouMean(typed: string, known: Iterable<string>): string {
  const closest = closestName(typed, known);
  return closest === undefined ? '' : `; did you mean "${closest}"?`;
}
