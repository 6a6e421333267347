// Users' AuthorizationPolicies for the Windows pods, carried to the wpgw (docs/user-policies.md).
// A policy selecting the Windows pods (or with targetRefs to a re-pointed Service, which Istio
// ignores for a classic gateway) would be enforced nowhere: they have no proxy. wpgw writes a copy
// on the gateway pods, every rule scoped to the listener ports of the Services in front of those
// pods, so other Services and the Windows egress on the same gateway are untouched. ALLOW is per
// workload: the ports a user ALLOW governs leave wpgw's own ALLOW (policy.ts), which keeps
// covering everything else; an ALLOW that would govern the Windows pods behind a sidecar too
// (namespace- or mesh-wide) takes every inbound port from it (nativeAllows). What cannot mean the
// same at the wpgw is reported.
import type { V1Pod } from '@kubernetes/client-node';
import { GATEWAY_POD_LABEL, MANAGED_LABEL } from '../../names.js';
import type { Conflict, KubeObject, UserIstioObjects } from '../desired-types.js';
import { selectorMatches } from '../labels.js';
import { gatewayLabels, meta, objectName, type Owner } from './common.js';
import { byAge, isUsers } from './user-routes.js';

/** A re-pointed Service as the gateway serves it: its selector and each port's listener. */
export interface ServedService {
  name: string;
  selector: Record<string, string>;
  ports: Array<{ port: number; targetPort: number | string; podPort: number }>;
}

export interface AuthzCarry {
  objects: KubeObject[];
  conflicts: Conflict[];
  /** Listener ports a user ALLOW policy governs: wpgw's own ALLOW leaves them out. */
  allowPorts: number[];
}

type Spec = Record<string, any>;
const NS_OWNER: Owner = { kind: 'namespace' };
const ACTIONS = new Set(['ALLOW', 'DENY', 'AUDIT', 'CUSTOM']);

/**
 * The re-pointed Services a policy (AuthorizationPolicy, RequestAuthentication, PeerAuthentication)
 * is about: by targetRefs, else by the Windows pods its selector picks; undefined: namespace-wide.
 */
export function policyTargets(
  policy: KubeObject,
  services: readonly ServedService[],
  pods: readonly V1Pod[],
): { services: ServedService[]; partial: string[] } | undefined {
  const s = (policy.spec ?? {}) as Spec;
  const refs: Spec[] = [...(Array.isArray(s.targetRefs) ? s.targetRefs : []), ...(s.targetRef ? [s.targetRef] : [])];
  if (refs.length > 0) {
    const names = new Set(
      refs.filter((r) => r?.kind === 'Service' && (r.group ?? '') === '').map((r) => String(r.name)),
    );
    return { services: services.filter((x) => names.has(x.name)), partial: [] };
  }
  const labels = s.selector?.matchLabels as Record<string, string> | undefined;
  if (!labels || Object.keys(labels).length === 0) return undefined; // namespace-wide: see below
  const windows = pods.filter((p) => p.metadata?.labels?.[MANAGED_LABEL] === 'true');
  const picked = windows.filter((p) => selectorMatches(labels, p.metadata?.labels ?? {}));
  const hit = services.filter((x) => picked.some((p) => selectorMatches(x.selector, p.metadata?.labels ?? {})));
  // The wpgw cannot tell which backend pod a request will reach: a policy for only some of a
  // Service's pods becomes a policy for the whole Service.
  const partial = hit
    .filter((x) => windows.some((p) => selectorMatches(x.selector, p.metadata?.labels ?? {}) && !picked.includes(p)))
    .map((x) => x.name);
  return { services: hit, partial };
}

const isAllow = (o: KubeObject): boolean => String(((o.spec ?? {}) as Spec).action ?? 'ALLOW') === 'ALLOW';
/** Does a policy name its targets (targetRefs / targetRef) instead of selecting pods? */
export const hasTargetRefs = (o: KubeObject): boolean => {
  const s = (o.spec ?? {}) as Spec;
  return (Array.isArray(s.targetRefs) && s.targetRefs.length > 0) || !!s.targetRef;
};
/** Namespace-wide (or, in the root namespace, mesh-wide): no selector, no targetRefs. */
export const isWide = (o: KubeObject): boolean => !selectorOf(o) && !hasTargetRefs(o);
/** A selector that picks the wpgw pods themselves (the user aiming a policy at the gateway). */
export function gatewaySelected(sel: Record<string, string> | undefined, namespace: string): boolean {
  return !!sel && Object.keys(sel).length === 1 && sel[GATEWAY_POD_LABEL] === namespace;
}
/** A policy's non-empty `selector.matchLabels`. */
export const selectorOf = (o: KubeObject): Record<string, string> | undefined => {
  const l = ((o.spec ?? {}) as Spec).selector?.matchLabels as Record<string, string> | undefined;
  return l && Object.keys(l).length > 0 ? l : undefined;
};

/**
 * User ALLOW policies that apply to the gateway pods as they are and would apply to the Windows
 * pods behind a sidecar too: namespace-wide ones of the namespace and mesh-wide ones of Istio's
 * root namespace (allow-nothing, a mesh default-deny, among them). ALLOW policies are ORed, so
 * while any of them is in force wpgw's own ALLOW opens no inbound port (it would undo them):
 * the re-pointed Services are governed by these and the carried ALLOWs, as a sidecar would be.
 * One selecting the gateway pods themselves is counted too (the user narrowing the wpgw).
 */
export function nativeAllows(
  namespace: string,
  policies: readonly KubeObject[],
  mesh: { namespace: string; objects: UserIstioObjects } | undefined,
): KubeObject[] {
  const own = policies.filter(
    (o) =>
      isUsers(o) &&
      o.metadata.namespace === namespace &&
      isAllow(o) &&
      (isWide(o) || gatewaySelected(selectorOf(o), namespace)),
  );
  const meshWide = (mesh?.objects.authorizationPolicies ?? []).filter(
    (o) => isUsers(o) && o.metadata.namespace === mesh!.namespace && isAllow(o) && isWide(o),
  );
  return [...own, ...meshWide].sort(byAge);
}

export function userAuthorization(
  namespace: string,
  policies: readonly KubeObject[],
  services: readonly ServedService[],
  pods: readonly V1Pod[],
): AuthzCarry {
  const out: AuthzCarry = { objects: [], conflicts: [], allowPorts: [] };
  const windowsPrincipals = new Set(
    pods
      .filter((p) => p.metadata?.labels?.[MANAGED_LABEL] === 'true')
      .map((p) => `/ns/${namespace}/sa/${p.spec?.serviceAccountName ?? 'default'}`),
  );
  for (const policy of policies.filter((p) => isUsers(p) && p.metadata.namespace === namespace).sort(byAge)) {
    const subject = `AuthorizationPolicy/${policy.metadata.name}`;
    const s = (policy.spec ?? {}) as Spec;
    const action = String(s.action ?? 'ALLOW');
    const t = policyTargets(policy, services, pods);
    if (!t) {
      if (services.length > 0 && !s.selector) {
        out.conflicts.push({
          subject,
          reason: 'NamespacePolicyOnGateway',
          message:
            action === 'ALLOW'
              ? `applies to every workload of ${namespace}, the wpgw included: it governs every re-pointed Service there (${services.map((x) => x.name).join(', ')}) as it would a sidecar in front of the Windows pods, and wpgw's own ALLOW opens none of their ports while it is in force, so callers it does not allow get 403 (the Windows egress keeps wpgw's own rule); its ports match the gateway listener ports, not the Windows pods' ports`
              : `applies to every workload of ${namespace}, the wpgw included: it now also acts on the Windows pods' egress and on every re-pointed Service there`,
        });
      }
      continue;
    }
    if (t.services.length === 0) continue;
    if (!ACTIONS.has(action)) {
      out.conflicts.push({
        subject,
        reason: 'PolicyNotCarried',
        message: `action ${action} is not one wpgw knows; not carried to the wpgw`,
      });
      continue;
    }
    for (const name of t.partial) {
      out.conflicts.push({
        subject,
        reason: 'PolicySelectsPartOfService',
        message: `selects only some of Service ${name}'s Windows pods; at the wpgw it acts on all of ${name}'s traffic`,
      });
    }
    const served = t.services.flatMap((x) => x.ports);
    const listen = [...new Set(served.map((p) => p.podPort))].sort((a, b) => a - b);
    if (action === 'ALLOW') out.allowPorts.push(...listen);
    const rules: Spec[] = Array.isArray(s.rules) ? s.rules : [];
    const problems = new Set<string>();
    const scoped = rules
      .map((r) => scopeRule(r, listen, served, problems, windowsPrincipals))
      .filter((r): r is Spec => r !== undefined);
    for (const p of problems) out.conflicts.push({ subject, reason: 'PolicyNotFaithful', message: p });
    if (scoped.length === 0) {
      // ALLOW without (matching) rules: nothing is allowed on those ports, which leaving them out
      // of wpgw's own ALLOW already does. DENY/AUDIT/CUSTOM without rules match nothing.
      if (rules.length > 0 && action !== 'ALLOW')
        out.conflicts.push({
          subject,
          reason: 'PolicyNotCarried',
          message: 'none of its rules can match at the wpgw (see the other reports); nothing carried',
        });
      continue;
    }
    out.objects.push({
      apiVersion: 'security.istio.io/v1',
      kind: 'AuthorizationPolicy',
      metadata: meta(objectName('wpgw-authz', policy.metadata.name), namespace, NS_OWNER),
      spec: {
        selector: { matchLabels: gatewayLabels(namespace) },
        action,
        ...(action === 'CUSTOM' && s.provider ? { provider: s.provider } : {}),
        rules: scoped,
      },
    });
  }
  out.allowPorts = [...new Set(out.allowPorts)].sort((a, b) => a - b);
  return out;
}

/** Application ports of the Windows pods (or Service ports) → the gateway listener ports serving them. */
function listenerPorts(ports: unknown, served: ServedService['ports']): { mapped: string[]; unknown: string[] } {
  const mapped = new Set<string>();
  const unknown: string[] = [];
  for (const p of Array.isArray(ports) ? ports.map(String) : []) {
    const hits = served.filter((x) => String(x.targetPort) === p || String(x.port) === p);
    if (hits.length === 0) unknown.push(p);
    for (const h of hits) mapped.add(String(h.podPort));
  }
  return { mapped: [...mapped].sort(), unknown };
}

function scopeRule(
  rule: Spec,
  listen: number[],
  served: ServedService['ports'],
  problems: Set<string>,
  windowsPrincipals: Set<string>,
): Spec | undefined {
  const all = listen.map(String);
  for (const f of Array.isArray(rule?.from) ? rule.from : []) {
    const src = f?.source ?? {};
    if (src.remoteIpBlocks || src.notRemoteIpBlocks)
      problems.add(
        'remoteIpBlocks: the wpgw sees the remote address from its own connection (useRemoteAddress), which may differ from what the Windows pod saw',
      );
    for (const pr of [...(src.principals ?? []), ...(src.notPrincipals ?? [])]) {
      if ([...windowsPrincipals].some((w) => String(pr).endsWith(w)))
        problems.add(
          `source principal ${pr} is a Windows pod's ServiceAccount: Windows pods reach others as the wpgw (ns/…/sa/wpgw), so it never matches`,
        );
    }
  }
  for (const w of Array.isArray(rule?.when) ? rule.when : []) {
    if (w?.key === 'destination.ip')
      problems.add('when destination.ip: at the wpgw the destination is the wpgw pod, not the Windows pod');
    if (w?.key === 'destination.port')
      problems.add('when destination.port: at the wpgw the port is the gateway listener port');
    if (w?.key === 'remote.ip')
      problems.add('when remote.ip: the wpgw sees the remote address from its own connection, which may differ');
  }
  const to: Spec[] = Array.isArray(rule?.to) && rule.to.length > 0 ? rule.to : [{ operation: {} }];
  const scopedTo = to.flatMap((t) => {
    const op: Spec = { ...(t?.operation ?? {}) };
    if (op.ports) {
      const { mapped, unknown } = listenerPorts(op.ports, served);
      if (unknown.length > 0)
        problems.add(
          `ports ${unknown.join(', ')} are not ports of the Services it protects; at the wpgw they match nothing`,
        );
      if (mapped.length === 0) return [];
      op.ports = mapped;
    } else {
      op.ports = all;
    }
    if (op.notPorts) op.notPorts = listenerPorts(op.notPorts, served).mapped;
    if (op.notPorts?.length === 0) delete op.notPorts;
    return [{ ...t, operation: op }];
  });
  if (scopedTo.length === 0) return undefined;
  return { ...rule, to: scopedTo };
}
