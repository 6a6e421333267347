// Kubernetes label-selector semantics (metav1.LabelSelector) with the reason a selector does not
// match, for explaining which admission webhooks a pod meets (`wpgw check-inject`). An absent or
// empty selector matches everything, as webhook namespace/object selectors do.

export interface LabelSelectorRequirement {
  key: string;
  operator: string;
  values?: string[];
}

export interface LabelSelector {
  matchLabels?: Record<string, string>;
  matchExpressions?: LabelSelectorRequirement[];
}

/** undefined when `selector` matches `labels`, else the first requirement not met, in words. */
export function unmetRequirement(
  selector: LabelSelector | undefined,
  labels: Readonly<Record<string, string>>,
): string | undefined {
  for (const [key, value] of Object.entries(selector?.matchLabels ?? {})) {
    if (labels[key] !== value)
      return `${key}=${value} required${key in labels ? ` (is "${labels[key]}")` : ' (absent)'}`;
  }
  for (const r of selector?.matchExpressions ?? []) {
    const has = Object.hasOwn(labels, r.key);
    const value = labels[r.key];
    const values = r.values ?? [];
    const now = has ? ` (is "${value}")` : ' (absent)';
    switch (r.operator) {
      case 'In':
        if (!has || !values.includes(value!)) return `${r.key} in [${values.join(', ')}] required${now}`;
        break;
      case 'NotIn':
        if (has && values.includes(value!)) return `${r.key} not in [${values.join(', ')}] required${now}`;
        break;
      case 'Exists':
        if (!has) return `${r.key} must exist`;
        break;
      case 'DoesNotExist':
        if (has) return `${r.key} must not exist${now}`;
        break;
      default:
        return `unknown operator ${r.operator} on ${r.key}`;
    }
  }
  return undefined;
}

export interface WebhookRuleLike {
  operations?: string[];
  apiGroups?: string[];
  resources?: string[];
}

/** Whether a webhook's rules cover CREATE of core/v1 pods (the only call check-inject explains). */
export function coversPodCreate(rules: readonly WebhookRuleLike[] | undefined): boolean {
  return (rules ?? []).some(
    (r) =>
      (r.operations ?? []).some((o) => o === 'CREATE' || o === '*') &&
      (r.apiGroups ?? []).some((g) => g === '' || g === '*') &&
      (r.resources ?? []).some((x) => x === 'pods' || x === '*'),
  );
}
