// Label-set helpers shared by the core, the caches and the controller. Two selector rules, named
// apart because they differ on an empty selector: a Service's selects nothing, matchLabels' everything.
import { GATEWAY_POD_LABEL } from '../names.js';

/** Service selector semantics: every selector pair present in labels. An empty or absent selector selects nothing. */
export function serviceSelects(
  selector: Readonly<Record<string, string>> | undefined,
  labels: Readonly<Record<string, string>>,
): boolean {
  if (!selector) return false;
  const entries = Object.entries(selector);
  if (entries.length === 0) return false;
  return entries.every(([k, v]) => labels[k] === v);
}

/** matchLabels semantics: every selector pair present in labels. An empty selector matches every label set. */
export function selectorMatches(
  selector: Readonly<Record<string, string>>,
  labels: Readonly<Record<string, string>>,
): boolean {
  return Object.entries(selector).every(([k, v]) => labels[k] === v);
}

/** Stable text form of a label set, for de-duplication and hashing. */
export function canonicalLabels(labels: Readonly<Record<string, string>>): string {
  return JSON.stringify(
    Object.keys(labels)
      .sort()
      .map((k) => [k, labels[k]]),
  );
}

/** The labels selecting a namespace's gateway pods (Service, Gateway, policy and workload selectors). */
export function gatewayLabels(namespace: string): Record<string, string> {
  return { [GATEWAY_POD_LABEL]: namespace };
}
