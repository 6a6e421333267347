// Users' Istio objects that act on the wrong hop, or break it, once Services are re-pointed at the
// wpgw (docs/user-policies.md, item 6), in the Service's namespace and in callers' namespaces:
// reported on the user's object, never changed.
import type { Conflict, KubeObject, UserIstioObjects } from '../desired-types.js';
import { isUsers, serviceHostNames } from './user-routes.js';

type Spec = Record<string, any>;
const specOf = (o: KubeObject): Spec => (o.spec && typeof o.spec === 'object' ? (o.spec as Spec) : {});

/** Every route destination of a VirtualService (http, tcp, tls, mirrors). */
function destinations(vs: KubeObject): Spec[] {
  const s = specOf(vs);
  const routes: Spec[] = [...(s.http ?? []), ...(s.tcp ?? []), ...(s.tls ?? [])];
  return routes
    .flatMap((r) => [
      ...(Array.isArray(r?.route) ? r.route.map((d: Spec) => d?.destination) : []),
      ...(r?.mirror ? [r.mirror] : []),
    ])
    .filter(Boolean);
}

/**
 * Namespaces whose Services a VirtualService or DestinationRule may name by a qualified host
 * (`name.ns`, `name.ns.svc`, the FQDN): which namespaces' reports a caller's object can change.
 * An outside host ("api.example.com") yields a name too; it just matches no re-pointed Service.
 */
export function namedNamespaces(o: KubeObject): string[] {
  const s = specOf(o);
  const hosts = [
    ...(Array.isArray(s.hosts) ? s.hosts : []),
    ...(s.host ? [s.host] : []),
    ...destinations(o).map((d) => d?.host),
  ];
  return [
    ...new Set(
      hosts
        .map((h) => String(h ?? '').split('.'))
        .filter((p) => p.length >= 2 && p[1])
        .map((p) => p[1]!),
    ),
  ];
}

/** Of every VirtualService and DestinationRule, those of other namespaces that may name Services of `namespace`. */
export function callerObjects(
  all: Pick<UserIstioObjects, 'virtualServices' | 'destinationRules'>,
  namespace: string,
): Pick<UserIstioObjects, 'virtualServices' | 'destinationRules'> {
  const naming = (o: KubeObject) =>
    o.metadata.namespace !== namespace && isUsers(o) && namedNamespaces(o).includes(namespace);
  const byNsName = (a: KubeObject, b: KubeObject) =>
    `${a.metadata.namespace}/${a.metadata.name}`.localeCompare(`${b.metadata.namespace}/${b.metadata.name}`);
  return {
    virtualServices: all.virtualServices.filter(naming).sort(byNsName),
    destinationRules: all.destinationRules.filter(naming).sort(byNsName),
  };
}

/**
 * The namespaces an object is visible to (Istio's exportTo: unset or "*" everywhere, "." its own
 * namespace, "~" nowhere). Only for objects outside the reconciled namespace.
 */
function exportedTo(o: KubeObject): string[] {
  const list: unknown[] =
    Array.isArray(specOf(o).exportTo) && specOf(o).exportTo.length > 0 ? specOf(o).exportTo : ['*'];
  const out = list
    .map(String)
    .filter((x) => x !== '~')
    .map((x) => (x === '.' ? (o.metadata.namespace ?? '') : x === '*' ? 'every namespace' : x));
  return [...new Set(out)];
}

/** TLS settings a caller-side DR may carry, at the top level or per port. */
function tlsSettings(policy: Spec | undefined): Spec[] {
  if (!policy) return [];
  return [
    ...(policy.tls ? [policy.tls] : []),
    ...(Array.isArray(policy.portLevelSettings)
      ? policy.portLevelSettings.flatMap((p: Spec) => (p?.tls ? [p.tls] : []))
      : []),
  ];
}

/**
 * `repointed`: the names of the namespace's re-pointed Services. `wpgwGateways`: the Gateway
 * names wpgw owns in the namespace (a user's route bound to one of them competes with wpgw's).
 */
export function userConflicts(
  namespace: string,
  clusterDomain: string,
  user: UserIstioObjects | undefined,
  repointed: readonly string[],
  wpgwGateways: readonly string[],
  /** Callers' objects in other namespaces that name this namespace's hosts. */
  callers?: Pick<UserIstioObjects, 'virtualServices' | 'destinationRules'>,
): Conflict[] {
  const out: Conflict[] = [];
  // In its own namespace a short name is the Service; elsewhere only qualified names are.
  const hostOf = new Map<string, string>();
  for (const name of repointed) for (const h of serviceHostNames(name, namespace, clusterDomain)) hostOf.set(h, name);
  const qualified = new Map([...hostOf].filter(([h]) => h.includes('.')));
  const ours = new Set(wpgwGateways.flatMap((g) => [g, `${namespace}/${g}`]));
  const oursQualified = new Set(wpgwGateways.map((g) => `${namespace}/${g}`));
  const mine = (o: KubeObject) => o.metadata.namespace === undefined || o.metadata.namespace === namespace;
  const own = (list: KubeObject[] | undefined) => (list ?? []).filter((o) => isUsers(o) && mine(o));
  const foreign = (list: KubeObject[] | undefined) =>
    (list ?? []).filter((o) => isUsers(o) && !mine(o) && exportedTo(o).length > 0);
  // Where a caller's object acts, said in its reports; `full` names the Service from there.
  const at = (o: KubeObject) =>
    mine(o)
      ? { ns: {}, where: '', full: (svc: string) => svc }
      : {
          ns: { subjectNamespace: o.metadata.namespace ?? '' },
          where: ` (for callers in ${exportedTo(o).join(', ')})`,
          full: (svc: string) => `${svc}.${namespace}`,
        };
  const vss = [...own(user?.virtualServices), ...foreign(callers?.virtualServices)];
  const drs = [...own(user?.destinationRules), ...foreign(callers?.destinationRules)];

  for (const vs of vss) {
    const subject = `VirtualService/${vs.metadata.name}`;
    const { ns, where, full } = at(vs);
    const hosts = mine(vs) ? hostOf : qualified;
    for (const d of destinations(vs)) {
      const svc = hosts.get(String(d.host ?? ''));
      if (svc && d.subset) {
        out.push({
          subject,
          ...ns,
          reason: 'CallerSubsetRoute',
          message: `routes to subset ${d.subset} of ${full(svc)}, which is re-pointed at the wpgw: the subset selects none of the wpgw pods, so every such request gets 503${where}. Route to subsets of ${svc}-app in a delegate VirtualService${where ? ` in ${namespace}` : ''} instead (README "Your own Istio policies")`,
        });
      }
    }
    const bound = (specOf(vs).gateways ?? []).filter((g: unknown) => (mine(vs) ? ours : oursQualified).has(String(g)));
    if (bound.length > 0) {
      out.push({
        subject,
        ...ns,
        reason: 'ForeignRouteOnGateway',
        message: `is bound to the wpgw Gateway ${bound.join(', ')}, beside wpgw's own VirtualService for the same hosts: Istio's order between them is undefined. Write a delegate VirtualService (no hosts) routing to the Service's -app host instead`,
      });
    }
  }

  for (const dr of drs) {
    const s = specOf(dr);
    const svc = (mine(dr) ? hostOf : qualified).get(String(s.host ?? ''));
    if (!svc) continue;
    const subject = `DestinationRule/${dr.metadata.name}`;
    const { ns, where, full } = at(dr);
    const tls = [
      ...tlsSettings(s.trafficPolicy),
      ...(Array.isArray(s.subsets) ? s.subsets.flatMap((x: Spec) => tlsSettings(x?.trafficPolicy)) : []),
    ];
    const breaking = tls.filter(
      (t) => (t.mode !== undefined && t.mode !== 'ISTIO_MUTUAL') || t.subjectAltNames || t.sni,
    );
    if (breaking.length > 0) {
      out.push({
        subject,
        ...ns,
        reason: 'CallerTlsBreaksWpgw',
        message: `sets tls ${breaking.map((t) => t.mode ?? 'with subjectAltNames/sni').join(', ')} for ${full(svc)}, which is re-pointed at the wpgw${where}: a DR's TLS always wins over auto-mTLS, and the wpgw accepts only Istio mTLS with its own identity (ns/${namespace}/sa/wpgw). Remove the tls settings (callers then use Istio mTLS automatically)`,
      });
    }
    if (Array.isArray(s.subsets) && s.subsets.length > 0) {
      out.push({
        subject,
        ...ns,
        reason: 'CallerSubsets',
        message: `defines subsets of ${full(svc)}, which now selects the wpgw pods: the subsets select nothing there${where}. Define them in a DestinationRule for ${svc}-app${where ? ` in ${namespace}` : ''}`,
      });
    }
    const endpointPolicy = ['outlierDetection', 'loadBalancer'].filter((k) => s.trafficPolicy?.[k] !== undefined);
    if (endpointPolicy.length > 0) {
      out.push({
        subject,
        ...ns,
        reason: 'CallerEndpointPolicy',
        message: `${endpointPolicy.join(' and ')} for ${full(svc)} now act on the wpgw pods${where}, not the Windows pods (outlier detection would eject a wpgw pod relaying a failing app). Put them in a DestinationRule for ${svc}-app`,
      });
    }
  }

  return out;
}
