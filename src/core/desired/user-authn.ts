// Users' RequestAuthentications and PeerAuthentications for the Windows pods, and the mesh-wide
// (root-namespace) policies, as they act at the wpgw (docs/user-policies.md, items 4 and the root
// namespace). A RequestAuthentication cannot be scoped by port or host on a gateway: all that
// select it are combined, and a present-but-invalid token (one from an issuer not listed too) gets
// 401 on every listener. So one selecting the Windows pods is carried to the gateway pods only when
// that changes nothing for the other Services behind the same wpgw: every re-pointed Service of the
// namespace then has the same JWT rules. PeerAuthentication does not shape gateway listeners (their
// Gateway server's TLS mode does: ISTIO_MUTUAL), so STRICT is already what the wpgw does and
// PERMISSIVE/DISABLE are reported.
import type { V1Pod } from '@kubernetes/client-node';
import { MANAGED_LABEL } from '../../names.js';
import type { Conflict, KubeObject, UserIstioObjects } from '../desired-types.js';
import { selectorMatches } from '../labels.js';
import { gatewayLabels, meta, objectName, type Owner } from './common.js';
import { gatewaySelected, hasTargetRefs, isWide, policyTargets, selectorOf, type ServedService } from './user-authz.js';
import { byAge, isUsers } from './user-routes.js';

type Spec = Record<string, any>;
const NS_OWNER: Owner = { kind: 'namespace' };
const specOf = (o: KubeObject): Spec => (o.spec && typeof o.spec === 'object' ? (o.spec as Spec) : {});

export interface AuthnInput {
  namespace: string;
  user: UserIstioObjects | undefined;
  /** Istio's root namespace and its policies. */
  mesh?: { namespace: string; objects: UserIstioObjects } | undefined;
  services: readonly ServedService[];
  pods: readonly V1Pod[];
  /** Does the gateway have HTTP egress listeners (a JWT filter acts on them too)? */
  httpEgress: boolean;
}

export interface AuthnCarry {
  objects: KubeObject[];
  conflicts: Conflict[];
  notes: string[];
}

/** One JWT rule as a comparable key (the fields in a fixed order). */
const ruleKey = (r: unknown): string => JSON.stringify(r, Object.keys((r ?? {}) as object).sort());
const jwtRules = (o: KubeObject): Spec[] => (Array.isArray(specOf(o).jwtRules) ? specOf(o).jwtRules : []);
const issuers = (keys: Iterable<string>): string =>
  [...new Set([...keys].map((k) => String(JSON.parse(k).issuer ?? '?')))].sort().join(', ') || 'none';

export function userAuthentication(i: AuthnInput): AuthnCarry {
  const out: AuthnCarry = { objects: [], conflicts: [], notes: [] };
  if (i.services.length === 0) return out;
  requestAuthentications(i, out);
  peerAuthentications(i, out);
  meshAuthorization(i, out);
  return out;
}

function requestAuthentications(i: AuthnInput, out: AuthnCarry): void {
  const own = (i.user?.requestAuthentications ?? [])
    .filter((o) => isUsers(o) && o.metadata.namespace === i.namespace)
    .sort(byAge);
  const meshWide = (i.mesh?.objects.requestAuthentications ?? []).filter((o) => isUsers(o) && isWide(o)).sort(byAge);
  // Already on the gateway pods as they are: namespace- and mesh-wide ones, and one aimed at the wpgw pods.
  const native = [...own.filter((o) => isWide(o) || gatewaySelected(selectorOf(o), i.namespace)), ...meshWide];
  const nativeKeys = new Set(native.flatMap((o) => jwtRules(o).map(ruleKey)));
  const selecting: Array<{ ra: KubeObject; services: ServedService[] }> = [];
  for (const ra of own) {
    const subject = `RequestAuthentication/${ra.metadata.name}`;
    if (isWide(ra)) {
      out.notes.push(
        `authentication: RequestAuthentication ${ra.metadata.name} is namespace-wide: it applies to the wpgw pods as it is (every re-pointed Service behind them)`,
      );
      continue;
    }
    if (gatewaySelected(selectorOf(ra), i.namespace)) continue; // aimed at the wpgw itself: native
    const t = policyTargets(ra, i.services, i.pods);
    if (!t || t.services.length === 0) continue;
    for (const name of t.partial) {
      out.conflicts.push({
        subject,
        reason: 'PolicySelectsPartOfService',
        message: `selects only some of Service ${name}'s Windows pods; at the wpgw its JWT rules act on all of ${name}'s traffic`,
      });
    }
    selecting.push({ ra, services: t.services });
  }
  for (const ra of meshWide) {
    out.notes.push(
      `authentication: RequestAuthentication ${i.mesh!.namespace}/${ra.metadata.name} is mesh-wide: it applies to the wpgw pods as it is`,
    );
  }
  // The JWT rules each Service has at the wpgw if the selecting ones were carried: equal for all, or not faithful.
  const perService = new Map(i.services.map((s) => [s.name, new Set<string>()]));
  for (const { ra, services } of selecting)
    for (const s of services) for (const r of jwtRules(ra)) perService.get(s.name)!.add(ruleKey(r));
  const sets = [...perService.entries()].map(([name, keys]) => ({ name, keys, text: [...keys].sort().join('\n') }));
  const faithful = sets.every((x) => x.text === sets[0]!.text);
  if (selecting.length > 0 && !faithful) {
    const differ = sets.map((x) => `${x.name}: issuers ${issuers(x.keys)}`).join('; ');
    for (const { ra } of selecting) {
      out.conflicts.push({
        subject: `RequestAuthentication/${ra.metadata.name}`,
        reason: 'RequestAuthenticationNotCarried',
        message: `not carried to the wpgw: the Services behind it do not all have the same JWT rules (${differ}), and a gateway combines every RequestAuthentication that selects it, so any Service would reject the others' tokens (401). Give every re-pointed Service of the namespace the same jwtRules, or write one namespace-wide RequestAuthentication`,
      });
    }
  }
  const carried = new Set(nativeKeys);
  for (const { ra } of faithful ? selecting : []) {
    const rules = jwtRules(ra).filter((r) => !carried.has(ruleKey(r)));
    for (const r of rules) carried.add(ruleKey(r));
    if (rules.length === 0) continue; // every rule already applies to the wpgw (namespace- or mesh-wide, or an earlier copy)
    out.objects.push({
      apiVersion: 'security.istio.io/v1',
      kind: 'RequestAuthentication',
      metadata: meta(objectName('wpgw-authn', ra.metadata.name), i.namespace, NS_OWNER),
      spec: { selector: { matchLabels: gatewayLabels(i.namespace) }, jwtRules: rules },
    });
    out.notes.push(
      `authentication: ${objectName('wpgw-authn', ra.metadata.name)} on the gateway carries RequestAuthentication ${ra.metadata.name} (every re-pointed Service has the same JWT rules)`,
    );
  }
  // JWT rules at the wpgw (carried, namespace- or mesh-wide) also act on the Windows egress.
  const inForce = [...native, ...(faithful ? selecting.map((s) => s.ra) : [])];
  if (i.httpEgress) {
    for (const ra of inForce) {
      const inMesh = ra.metadata.namespace !== i.namespace;
      out.conflicts.push({
        subject: `RequestAuthentication/${ra.metadata.name}`,
        ...(inMesh ? { subjectNamespace: ra.metadata.namespace } : {}),
        reason: 'RequestAuthenticationOnEgress',
        message: `its JWT rules act on every listener of the wpgw in ${i.namespace}, the Windows pods' HTTP egress included (a sidecar never checks outbound requests): a Windows pod that sends a bearer token not valid for these rules to an outside service gets 401 from the wpgw`,
      });
    }
  }
  // An AuthorizationPolicy that needs a request principal where no JWT is validated denies (or never matches).
  const jwtFor = new Set(
    i.services.filter((s) => nativeKeys.size > 0 || (faithful && perService.get(s.name)!.size > 0)).map((s) => s.name),
  );
  for (const ap of (i.user?.authorizationPolicies ?? []).filter(
    (o) => isUsers(o) && o.metadata.namespace === i.namespace,
  )) {
    if (!JSON.stringify(specOf(ap).rules ?? []).match(/"(notR|r)equestPrincipals"|"request\.auth\./)) continue;
    const t = policyTargets(ap, i.services, i.pods);
    const without = (t?.services ?? []).filter((s) => !jwtFor.has(s.name)).map((s) => s.name);
    if (without.length === 0) continue;
    out.conflicts.push({
      subject: `AuthorizationPolicy/${ap.metadata.name}`,
      reason: 'PolicyNeedsRequestAuthentication',
      message: `its rules match request principals (JWT), but no RequestAuthentication validates tokens for ${without.join(', ')} at the wpgw (see the RequestAuthentication reports): no request has a request principal there`,
    });
  }
}

/** Modes a PeerAuthentication sets: the workload's, then per port ("port N"). */
function peerModes(pa: KubeObject): Array<{ where: string; port?: string; mode: string }> {
  const s = specOf(pa);
  return [
    ...(s.mtls?.mode ? [{ where: 'mode', mode: String(s.mtls.mode) }] : []),
    ...Object.entries((s.portLevelMtls ?? {}) as Record<string, Spec>).flatMap(([port, v]) =>
      v?.mode ? [{ where: `port ${port}`, port, mode: String(v.mode) }] : [],
    ),
  ];
}

function peerAuthentications(i: AuthnInput, out: AuthnCarry): void {
  const own = (i.user?.peerAuthentications ?? []).filter((o) => isUsers(o) && o.metadata.namespace === i.namespace);
  const names = i.services.map((s) => s.name).join(', ');
  for (const pa of own) {
    const subject = `PeerAuthentication/${pa.metadata.name}`;
    const sel = selectorOf(pa);
    const modes = peerModes(pa);
    if (isWide(pa) || gatewaySelected(sel, i.namespace)) {
      const off = modes.filter((m) => m.mode === 'DISABLE');
      if (off.length > 0) {
        out.conflicts.push({
          subject,
          reason: 'PeerAuthenticationDisablesMtls',
          message: `DISABLE (${off.map((m) => m.where).join(', ')}) ${sel ? 'for the wpgw pods' : 'namespace-wide'} turns callers' auto-mTLS off toward the wpgw, whose listeners accept only Istio mTLS: calls to ${names} fail. Leave the wpgw pods out of it`,
        });
      }
      continue;
    }
    const t = policyTargets(pa, i.services, i.pods);
    if (!t || t.services.length === 0) continue;
    const served = t.services.flatMap((s) => s.ports.map((p) => ({ ...p, service: s.name })));
    const weak = modes.filter((m) => m.mode === 'PERMISSIVE' || m.mode === 'DISABLE');
    for (const m of weak) {
      // portLevelMtls names the workload's (container) port: the Windows pods' targetPort.
      const hit =
        m.port === undefined
          ? served
          : served.filter((p) => String(p.targetPort) === m.port || String(p.podPort) === m.port);
      const which =
        hit.length > 0
          ? [...new Set(hit.map((p) => `${p.service}:${p.port}`))].join(', ')
          : `no port of ${t.services.map((s) => s.name).join(', ')} (it matches nothing)`;
      out.conflicts.push({
        subject,
        reason: m.mode === 'PERMISSIVE' ? 'PeerAuthenticationPermissive' : 'PeerAuthenticationNotCarried',
        message:
          m.mode === 'PERMISSIVE'
            ? `${m.where} PERMISSIVE for ${which} cannot be expressed at the wpgw: its listener accepts only Istio mTLS (a plaintext and an mTLS server cannot share a port), so plaintext clients that reached the Windows pods directly now fail. Keep such clients in the mesh, or leave the Service out of the wpgw (wpgw.io/inbound: disabled)`
            : `${m.where} DISABLE for ${which}: the Windows pods have no sidecar, and the wpgw's listener in front of them still requires Istio mTLS (callers are unaffected: their auto-mTLS follows the wpgw pods); plaintext clients fail`,
      });
    }
    if (weak.length === 0)
      out.notes.push(
        `authentication: PeerAuthentication ${pa.metadata.name} (STRICT or inherited) for ${t.services.map((s) => s.name).join(', ')}: the wpgw's listeners already require Istio mTLS`,
      );
  }
  // Mesh-wide DISABLE reaches the wpgw unless the namespace (or a policy for the wpgw) sets a mode.
  const overridden = own.some(
    (pa) =>
      (isWide(pa) || gatewaySelected(selectorOf(pa), i.namespace)) &&
      specOf(pa).mtls?.mode &&
      specOf(pa).mtls.mode !== 'UNSET',
  );
  for (const pa of (i.mesh?.objects.peerAuthentications ?? []).filter((o) => isUsers(o) && isWide(o))) {
    if (overridden || specOf(pa).mtls?.mode !== 'DISABLE') continue;
    out.conflicts.push({
      subject: `PeerAuthentication/${pa.metadata.name}`,
      subjectNamespace: pa.metadata.namespace,
      reason: 'PeerAuthenticationDisablesMtls',
      message: `mesh-wide DISABLE turns callers' auto-mTLS off toward the wpgw in ${i.namespace}, whose listeners accept only Istio mTLS: calls to ${names} fail. Give namespace ${i.namespace} a PeerAuthentication with mode STRICT or PERMISSIVE`,
    });
  }
}

/**
 * Root-namespace AuthorizationPolicies apply to the gateway pods natively (never copied). Where
 * that differs from a sidecar in front of the Windows pods, say so on the policy.
 */
function meshAuthorization(i: AuthnInput, out: AuthnCarry): void {
  if (!i.mesh) return;
  const windows = i.pods.filter((p) => p.metadata?.labels?.[MANAGED_LABEL] === 'true');
  for (const ap of (i.mesh.objects.authorizationPolicies ?? []).filter(isUsers).sort(byAge)) {
    const subject = `AuthorizationPolicy/${ap.metadata.name}`;
    const base = { subject, subjectNamespace: ap.metadata.namespace };
    const action = String(specOf(ap).action ?? 'ALLOW');
    const sel = selectorOf(ap);
    if (sel) {
      if (windows.some((p) => selectorMatches(sel, p.metadata?.labels ?? {}))) {
        out.conflicts.push({
          ...base,
          reason: 'PolicyNotCarried',
          message: `a root-namespace policy whose selector picks Windows pods of ${i.namespace} is not carried to the wpgw (wpgw carries the namespace's own); write it in ${i.namespace}`,
        });
      }
      continue;
    }
    if (hasTargetRefs(ap)) continue;
    out.conflicts.push({
      ...base,
      reason: 'MeshPolicyOnGateway',
      message:
        action === 'ALLOW'
          ? `mesh-wide ALLOW: it governs the re-pointed Services at the wpgw in ${i.namespace} (${i.services.map((s) => s.name).join(', ')}) as it would a sidecar in front of the Windows pods, and wpgw's own ALLOW opens none of their ports while it is in force: callers it does not allow get 403 unless an ALLOW for their Windows pods in ${i.namespace} (carried to the wpgw) allows them. The Windows egress keeps wpgw's own rule; the policy's ports match the gateway listener ports, not the Windows pods' ports`
          : `mesh-wide ${action}: it applies to the wpgw pods of ${i.namespace} too, on every listener, the Windows pods' egress included (a sidecar never checks outbound requests), and its ports match the gateway listener ports, not the Windows pods' ports`,
    });
  }
}
