// Label-set helpers shared by the core, the caches and the controller.

/** Equality-based Service selector semantics: every selector pair present in labels. Empty selects nothing. */
export function selectorMatches(
  selector: Readonly<Record<string, string>> | undefined,
  labels: Readonly<Record<string, string>>,
): boolean {
  if (!selector) return false;
  const entries = Object.entries(selector);
  if (entries.length === 0) return false;
  return entries.every(([k, v]) => labels[k] === v);
}

/** Stable text form of a label set, for de-duplication and hashing. */
export function canonicalLabels(labels: Readonly<Record<string, string>>): string {
  return JSON.stringify(Object.keys(labels).sort().map((k) => [k, labels[k]]));
}
