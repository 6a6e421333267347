// Users' Istio objects that act on the wrong hop, or break it, once Services are re-pointed at the
// wpgw (docs/user-policies.md, item 6 and 4): reported on the user's object, never changed.
import { GATEWAY_POD_LABEL } from '../../names.js';
import type { Conflict, KubeObject, UserIstioObjects } from '../desired-types.js';
import { selectorMatches } from '../labels.js';
import { isUsers, serviceHostNames } from './user-routes.js';

type Spec = Record<string, any>;
const specOf = (o: KubeObject): Spec => (o.spec && typeof o.spec === 'object' ? (o.spec as Spec) : {});

/** Every route destination of a VirtualService (http, tcp, tls, mirrors). */
function destinations(vs: KubeObject): Spec[] {
  const s = specOf(vs);
  const routes: Spec[] = [...(s.http ?? []), ...(s.tcp ?? []), ...(s.tls ?? [])];
  return routes.flatMap((r) => [...(Array.isArray(r?.route) ? r.route.map((d: Spec) => d?.destination) : []), ...(r?.mirror ? [r.mirror] : [])]).filter(Boolean);
}

/** TLS settings a caller-side DR may carry, at the top level or per port. */
function tlsSettings(policy: Spec | undefined): Spec[] {
  if (!policy) return [];
  return [...(policy.tls ? [policy.tls] : []), ...(Array.isArray(policy.portLevelSettings) ? policy.portLevelSettings.flatMap((p: Spec) => (p?.tls ? [p.tls] : [])) : [])];
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
  /** Label sets of the Windows (managed) pods: a PeerAuthentication/RequestAuthentication selecting one is about them. */
  windowsLabels: ReadonlyArray<Record<string, string>>,
): Conflict[] {
  if (!user) return [];
  const out: Conflict[] = [];
  const hostOf = new Map<string, string>();
  for (const name of repointed) for (const h of serviceHostNames(name, namespace, clusterDomain)) hostOf.set(h, name);
  const ours = new Set(wpgwGateways.flatMap((g) => [g, `${namespace}/${g}`]));

  for (const vs of user.virtualServices.filter(isUsers)) {
    const subject = `VirtualService/${vs.metadata.name}`;
    for (const d of destinations(vs)) {
      const svc = hostOf.get(String(d.host ?? ''));
      if (svc && d.subset) {
        out.push({
          subject,
          reason: 'CallerSubsetRoute',
          message: `routes to subset ${d.subset} of ${svc}, which is re-pointed at the wpgw: the subset selects none of the wpgw pods, so every such request gets 503. Route to subsets of ${svc}-app in a delegate VirtualService instead (README "Your own Istio policies")`,
        });
      }
    }
    const bound = (specOf(vs).gateways ?? []).filter((g: unknown) => ours.has(String(g)));
    if (bound.length > 0) {
      out.push({
        subject,
        reason: 'ForeignRouteOnGateway',
        message: `is bound to the wpgw Gateway ${bound.join(', ')}, beside wpgw's own VirtualService for the same hosts: Istio's order between them is undefined. Write a delegate VirtualService (no hosts) routing to the Service's -app host instead`,
      });
    }
  }

  for (const dr of user.destinationRules.filter(isUsers)) {
    const s = specOf(dr);
    const svc = hostOf.get(String(s.host ?? ''));
    if (!svc) continue;
    const subject = `DestinationRule/${dr.metadata.name}`;
    const tls = [...tlsSettings(s.trafficPolicy), ...(Array.isArray(s.subsets) ? s.subsets.flatMap((x: Spec) => tlsSettings(x?.trafficPolicy)) : [])];
    const breaking = tls.filter((t) => (t.mode !== undefined && t.mode !== 'ISTIO_MUTUAL') || t.subjectAltNames || t.sni);
    if (breaking.length > 0) {
      out.push({
        subject,
        reason: 'CallerTlsBreaksWpgw',
        message: `sets tls ${breaking.map((t) => t.mode ?? 'with subjectAltNames/sni').join(', ')} for ${svc}, which is re-pointed at the wpgw: a DR's TLS always wins over auto-mTLS, and the wpgw accepts only Istio mTLS with its own identity (ns/${namespace}/sa/wpgw). Remove the tls settings (callers then use Istio mTLS automatically)`,
      });
    }
    if (Array.isArray(s.subsets) && s.subsets.length > 0) {
      out.push({ subject, reason: 'CallerSubsets', message: `defines subsets of ${svc}, which now selects the wpgw pods: the subsets select nothing there. Define them in a DestinationRule for ${svc}-app` });
    }
    const endpointPolicy = ['outlierDetection', 'loadBalancer'].filter((k) => s.trafficPolicy?.[k] !== undefined);
    if (endpointPolicy.length > 0) {
      out.push({
        subject,
        reason: 'CallerEndpointPolicy',
        message: `${endpointPolicy.join(' and ')} for ${svc} now act on the wpgw pods, not the Windows pods (outlier detection would eject a wpgw pod relaying a failing app). Put them in a DestinationRule for ${svc}-app`,
      });
    }
  }

  const windowsSelected = (sel: Record<string, string> | undefined) => !!sel && windowsLabels.some((l) => selectorMatches(sel, l));
  const gatewaySelected = (sel: Record<string, string> | undefined) => !sel || Object.keys(sel).length === 0 || (Object.keys(sel).length === 1 && sel[GATEWAY_POD_LABEL] === namespace);
  if (repointed.length > 0) {
    for (const pa of (user.peerAuthentications ?? []).filter(isUsers)) {
      const s = specOf(pa);
      const subject = `PeerAuthentication/${pa.metadata.name}`;
      const sel = s.selector?.matchLabels as Record<string, string> | undefined;
      const modes = [s.mtls?.mode, ...Object.values(s.portLevelMtls ?? {}).map((p: any) => p?.mode)].filter(Boolean);
      if (gatewaySelected(sel) && modes.includes('DISABLE')) {
        out.push({
          subject,
          reason: 'PeerAuthenticationDisablesMtls',
          message: `mode DISABLE ${sel ? 'for the wpgw pods' : 'namespace-wide'} turns callers' auto-mTLS off toward the wpgw, whose listeners accept only Istio mTLS: calls to ${repointed.join(', ')} fail. Leave the wpgw pods out of it`,
        });
      } else if (windowsSelected(sel)) {
        out.push({
          subject,
          reason: 'PeerAuthenticationNotCarried',
          message: `selects workloads by label; for Windows pods behind the wpgw it has no effect: the wpgw's listeners always require Istio mTLS (STRICT), and PERMISSIVE cannot be expressed there (a plaintext and an mTLS server cannot share a port)`,
        });
      }
    }
    for (const ra of (user.requestAuthentications ?? []).filter(isUsers)) {
      const sel = specOf(ra).selector?.matchLabels as Record<string, string> | undefined;
      if (!gatewaySelected(sel) && !windowsSelected(sel)) continue;
      out.push({
        subject: `RequestAuthentication/${ra.metadata.name}`,
        reason: gatewaySelected(sel) ? 'RequestAuthenticationOnGateway' : 'RequestAuthenticationNotCarried',
        message: gatewaySelected(sel)
          ? 'applies to the wpgw pods too: its JWT rules act on every re-pointed Service and on the Windows egress through the wpgw (a token from an issuer not listed gets 401 there)'
          : 'selects workloads by label; it is not carried to the wpgw, which cannot scope a RequestAuthentication to one Service (all that select it are combined, and any invalid token gets 401 on every Service and on the Windows egress). Make it namespace-wide if every Service behind the wpgw uses the same issuers',
      });
    }
  }
  return out;
}
