// Services created before their Windows pods existed were admitted un-re-pointed. Bumping an
// annotation makes the API server send them through the webhook again, which re-points them.
import { createHash } from 'node:crypto';
import type { V1Ingress, V1Pod, V1Service } from '@kubernetes/client-node';
import {
  annotationsOf,
  canonicalLabels,
  isManagedByWpgw,
  isTerminating,
  labelsOf,
  serviceSelects,
} from '../cluster/objects.js';
import { appServiceBlocker, blockingNonMeshAccess, serviceOwnerOf, type ServiceOwner } from '../core/service-rules.js';
import { INJECT_KEY, NUDGE_ANNOTATION, SERVICE_ORIGINAL_ANNOTATION, appServiceName } from '../names.js';

export interface Nudge {
  service: string;
  /** New wpgw.io/nudge value: a hash of the pod label sets the Service selects (or of `access`). */
  value: string;
  /** repoint: not re-pointed yet; restore: re-pointed, but non-mesh clients now reach it (`access`). */
  why: 'repoint' | 'restore';
  access: string[];
}

/** Stable short hash of a collection of label sets (order and duplicates do not matter). */
export function nudgeValue(labelSets: ReadonlyArray<Readonly<Record<string, string>>>): string {
  const canon = [...new Set(labelSets.map(canonicalLabels))].sort();
  return createHash('sha256').update(JSON.stringify(canon)).digest('hex').slice(0, 16);
}

function isRepointed(svc: V1Service): boolean {
  return SERVICE_ORIGINAL_ANNOTATION in annotationsOf(svc) && !isManagedByWpgw(svc);
}

/**
 * Could the webhook re-point this Service? (It has a selector, is a normal ClusterIP Service that
 * no non-mesh client reaches, its `<name>-app` can exist, ...) `serviceOwner` says who owns a
 * Service of a given name in its namespace.
 */
export function isNudgeCandidate(
  svc: V1Service,
  serviceOwner: (name: string) => ServiceOwner | undefined = () => undefined,
  ingresses: readonly V1Ingress[] = [],
): boolean {
  const selector = svc.spec?.selector;
  if (!selector || Object.keys(selector).length === 0) return false;
  if (SERVICE_ORIGINAL_ANNOTATION in annotationsOf(svc)) return false; // already re-pointed
  if (isManagedByWpgw(svc)) return false;
  if (isTerminating(svc)) return false;
  if (svc.spec?.type === 'ExternalName') return false;
  if (svc.spec?.clusterIP === 'None') return false; // headless: clients reach pods directly
  if (labelsOf(svc)[INJECT_KEY] === 'false' || annotationsOf(svc)[INJECT_KEY] === 'false') return false;
  // The webhook would deny it or leave it alone (and say why when the user applies it).
  const name = svc.metadata?.name ?? '';
  if (appServiceBlocker(name, serviceOwner(appServiceName(name)))) return false;
  if (blockingNonMeshAccess(svc, ingresses).length > 0) return false;
  return true;
}

/**
 * Services to nudge. `alreadyNudged(service)` returns the value this process last wrote, so a
 * value is written at most once even if the webhook decides not to re-point the Service.
 */
export function selectNudges(
  services: readonly V1Service[],
  managedPods: readonly V1Pod[],
  alreadyNudged: (service: string) => string | undefined = () => undefined,
  ingresses: readonly V1Ingress[] = [],
): Nudge[] {
  const podLabels = managedPods.filter((p) => !isTerminating(p)).map((p) => labelsOf(p));
  const owners = new Map(services.map((s) => [s.metadata?.name ?? '', serviceOwnerOf(s)]));
  const out: Nudge[] = [];
  for (const svc of services) {
    const name = svc.metadata?.name ?? '';
    // Re-pointed earlier, but an Ingress of a controller outside the mesh sends to it now: the
    // webhook restores such a Service when it is re-admitted.
    const restore = isRepointed(svc) && !isTerminating(svc) ? blockingNonMeshAccess(svc, ingresses) : [];
    if (restore.length > 0) {
      const value = nudgeValue([{ restore: restore.join('\n') }]);
      if (annotationsOf(svc)[NUDGE_ANNOTATION] !== value && alreadyNudged(name) !== value)
        out.push({ service: name, value, why: 'restore', access: restore });
      continue;
    }
    if (!isNudgeCandidate(svc, (n) => owners.get(n), ingresses)) continue;
    const matching = podLabels.filter((l) => serviceSelects(svc.spec?.selector, l));
    if (matching.length === 0) continue;
    const value = nudgeValue(matching);
    if (annotationsOf(svc)[NUDGE_ANNOTATION] === value || alreadyNudged(name) === value) continue;
    out.push({ service: name, value, why: 'repoint', access: [] });
  }
  return out.sort((a, b) => a.service.localeCompare(b.service));
}
