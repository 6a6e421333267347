// Users' own routing for the wpgw -> `<name>-app` hop of a re-pointed Service (docs/user-policies.md):
// a delegate VirtualService (no hosts) routing to `<name>-app`, which the controller-owned root
// `wpgw-in-<name>` hands its HTTP routes to, and a DestinationRule for `<name>-app` whose subsets
// and traffic policy the controller's own DR for that host carries with TLS pinned for a pod
// without a sidecar. The user's objects are read, never written.
import { MANAGED_BY_LABEL, MANAGED_BY_VALUE, appServiceName } from '../../names.js';
import type { Conflict, KubeObject, UserIstioObjects } from '../desired-types.js';

export interface UserRouting {
  /** The user's delegate VirtualService the inbound HTTP routes hand over to. */
  delegate?: { name: string; namespace: string };
  /** The user's DestinationRule for `<name>-app`, TLS made safe for the Windows pods. */
  appPolicy?: { trafficPolicy: Record<string, unknown>; subsets?: unknown[]; from: string };
  conflicts: Conflict[];
}

type Spec = Record<string, any>;

/** Every way a DestinationRule or VirtualService in `namespace` may name the Service `name`. */
export function serviceHostNames(name: string, namespace: string, clusterDomain: string): string[] {
  return [name, `${name}.${namespace}`, `${name}.${namespace}.svc`, `${name}.${namespace}.svc.${clusterDomain}`];
}

export function isUsers(o: KubeObject): boolean {
  return o.metadata.labels?.[MANAGED_BY_LABEL] !== MANAGED_BY_VALUE;
}

/** Creation order then name: Istio's own order for objects of one kind (and deterministic). */
export function byAge(a: KubeObject, b: KubeObject): number {
  const ta = (a.metadata as { creationTimestamp?: string }).creationTimestamp ?? '';
  const tb = (b.metadata as { creationTimestamp?: string }).creationTimestamp ?? '';
  return ta === tb ? a.metadata.name.localeCompare(b.metadata.name) : ta < tb ? -1 : 1;
}

const specOf = (o: KubeObject): Spec => (o.spec && typeof o.spec === 'object' ? (o.spec as Spec) : {});

function httpDestinationHosts(vs: KubeObject): string[] {
  const http: Spec[] = Array.isArray(specOf(vs).http) ? specOf(vs).http : [];
  return http.flatMap((r) =>
    [...(Array.isArray(r?.route) ? r.route : []), ...(r?.mirror ? [{ destination: r.mirror }] : [])].map((d: Spec) =>
      String(d?.destination?.host ?? d?.host ?? ''),
    ),
  );
}

const isDelegate = (vs: KubeObject): boolean => !Array.isArray(specOf(vs).hosts) || specOf(vs).hosts.length === 0;

/**
 * What the user wrote for Service `name`'s wpgw hop. `appNames` of other re-pointed Services tell
 * a delegate for several Services (which one root cannot hand to) apart.
 */
export function userRouting(
  name: string,
  namespace: string,
  clusterDomain: string,
  user: UserIstioObjects | undefined,
  opts: { httpPorts: number; otherServices: readonly string[] },
): UserRouting {
  const conflicts: Conflict[] = [];
  if (!user) return { conflicts };
  const app = appServiceName(name);
  const appNames = new Set(serviceHostNames(app, namespace, clusterDomain));
  const selfNames = new Set(serviceHostNames(name, namespace, clusterDomain));
  const otherApps = new Set(
    opts.otherServices.flatMap((s) => serviceHostNames(appServiceName(s), namespace, clusterDomain)),
  );

  const candidates = user.virtualServices
    .filter(
      (vs) =>
        isUsers(vs) &&
        vs.metadata.namespace === namespace &&
        isDelegate(vs) &&
        httpDestinationHosts(vs).some((h) => appNames.has(h)),
    )
    .sort(byAge);
  const usable: KubeObject[] = [];
  for (const vs of candidates) {
    const subject = `VirtualService/${vs.metadata.name}`;
    const s = specOf(vs);
    if (Array.isArray(s.gateways) && s.gateways.length > 0) {
      conflicts.push({
        subject,
        reason: 'DelegateWithGateways',
        message: `routes to ${app} but sets gateways; a delegate VirtualService (no hosts) must not set gateways, so wpgw does not use it for Service ${name}`,
      });
      continue;
    }
    if (httpDestinationHosts(vs).some((h) => otherApps.has(h))) {
      conflicts.push({
        subject,
        reason: 'DelegateForSeveralServices',
        message: `routes to ${app} and to another re-pointed Service's -app host; one delegate serves one Service, so wpgw does not use it for Service ${name}`,
      });
      continue;
    }
    usable.push(vs);
  }
  const [chosen, ...others] = usable;
  for (const vs of others) {
    conflicts.push({
      subject: `VirtualService/${vs.metadata.name}`,
      reason: 'MultipleDelegates',
      message: `Service ${name} already takes its wpgw routes from the older delegate VirtualService ${chosen!.metadata.name}; merge the two (wpgw hands over to one)`,
    });
  }
  if (chosen) {
    conflicts.push(...delegateProblems(chosen, name, app, selfNames, opts.httpPorts));
  }

  const rules = user.destinationRules
    .filter((dr) => isUsers(dr) && dr.metadata.namespace === namespace && appNames.has(String(specOf(dr).host ?? '')))
    .sort(byAge);
  const [rule, ...moreRules] = rules;
  for (const dr of moreRules) {
    conflicts.push({
      subject: `DestinationRule/${dr.metadata.name}`,
      reason: 'MultipleDestinationRules',
      message: `${app} already takes its policy from the older DestinationRule ${rule!.metadata.name}; merge the two (Istio keeps only the first trafficPolicy)`,
    });
  }
  const appPolicy = rule ? carriedPolicy(rule, app, conflicts) : undefined;
  return {
    ...(chosen && opts.httpPorts > 0 ? { delegate: { name: chosen.metadata.name, namespace } } : {}),
    ...(appPolicy ? { appPolicy } : {}),
    conflicts,
  };
}

/** What in a delegate cannot act at the wpgw hop: said, not dropped silently. */
function delegateProblems(
  vs: KubeObject,
  name: string,
  app: string,
  selfNames: Set<string>,
  httpPorts: number,
): Conflict[] {
  const subject = `VirtualService/${vs.metadata.name}`;
  const out: Conflict[] = [];
  const s = specOf(vs);
  if (httpPorts === 0) {
    out.push({
      subject,
      reason: 'DelegateWithoutHttpPort',
      message: `Service ${name} has no HTTP port (name it http-* or set appProtocol), so its wpgw routes are TCP/TLS and cannot hand over to this delegate`,
    });
  }
  if (s.tcp || s.tls) {
    out.push({
      subject,
      reason: 'DelegateNonHttp',
      message: 'tcp and tls routes are ignored in a delegate VirtualService (Istio delegates HTTP routes only)',
    });
  }
  const http: Spec[] = Array.isArray(s.http) ? s.http : [];
  http.forEach((r, i) => {
    const label = r?.name ? `route "${r.name}"` : `http[${i}]`;
    for (const m of Array.isArray(r?.match) ? r.match : []) {
      if (m?.port !== undefined) {
        out.push({
          subject,
          reason: 'DelegatePortMatch',
          message: `${label} matches port ${m.port}, but at the wpgw the port is the gateway listener's: Istio drops this route (wpgw's root already matches each port; remove the port match)`,
        });
      }
      for (const key of ['sourceLabels', 'sourceNamespace', 'gateways']) {
        if (m?.[key] !== undefined) {
          out.push({
            subject,
            reason: 'DelegateSourceMatch',
            message: `${label} matches ${key}, which the wpgw evaluates against itself, not the caller: it cannot be carried to the wpgw hop`,
          });
        }
      }
    }
    if (httpDestinationHosts({ ...vs, spec: { http: [r] } }).some((h) => selfNames.has(h))) {
      out.push({
        subject,
        reason: 'DelegateLoop',
        message: `${label} routes to ${name}, which is the wpgw itself; route to ${app} (the Windows pods)`,
      });
    }
  });
  return out;
}

/**
 * The user's DR for `<name>-app` as the controller's DR for that host carries it: the same subsets
 * and traffic policy, TLS DISABLE unless the user asked for TLS the app terminates itself (SIMPLE,
 * MUTUAL). ISTIO_MUTUAL cannot work: the Windows pods have no sidecar to terminate it.
 */
function carriedPolicy(rule: KubeObject, app: string, conflicts: Conflict[]): UserRouting['appPolicy'] {
  const s = specOf(rule);
  const subject = `DestinationRule/${rule.metadata.name}`;
  const pin = (policy: Spec | undefined, where: string, topLevel: boolean): Spec | undefined => {
    if (!policy && !topLevel) return undefined;
    const out: Spec = { ...(policy ?? {}) };
    const mode = out.tls?.mode;
    if (mode === 'ISTIO_MUTUAL') {
      conflicts.push({
        subject,
        reason: 'AppTlsIstioMutual',
        message: `${where} sets tls ISTIO_MUTUAL toward ${app}, but the Windows pods have no sidecar to terminate Istio mTLS; wpgw sends plaintext (DISABLE) instead`,
      });
      out.tls = { mode: 'DISABLE' };
    } else if (mode === undefined && topLevel) {
      out.tls = { mode: 'DISABLE' };
    }
    if (Array.isArray(out.portLevelSettings)) {
      out.portLevelSettings = out.portLevelSettings.map(
        (p: Spec, i: number) => pin(p, `${where} portLevelSettings[${i}]`, false) ?? p,
      );
    }
    return out;
  };
  const trafficPolicy = pin(s.trafficPolicy, 'trafficPolicy', true)!;
  const subsets = Array.isArray(s.subsets)
    ? s.subsets.map((sub: Spec, i: number) =>
        sub?.trafficPolicy ? { ...sub, trafficPolicy: pin(sub.trafficPolicy, `subset ${sub.name ?? i}`, false) } : sub,
      )
    : undefined;
  return { trafficPolicy, ...(subsets ? { subsets } : {}), from: rule.metadata.name };
}
