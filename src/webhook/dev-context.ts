// The AdmissionContext of `wpgw webhook --dev`: no cluster, a fixed gateway address, and what this
// process has admitted standing in for the watch cache: managed Pods and Services as admitted (so
// a Service posted after its pods is re-pointed, a second one gets other gateway pod ports, and
// `<name>-app` ownership is known, as with the real caches). The answers come from the core's
// namespaceView, like the webhook's and render's. For trying the webhook locally; never for a cluster.
import type { V1Service } from '@kubernetes/client-node';
import jsonpatch from 'fast-json-patch';
import type { AdmitResult } from '../core/admission-types.js';
import type { AdmissionContext } from '../core/context.js';
import { admissionContext, fromLists, namespaceView, type PodObject } from '../core/namespace-view.js';
import { MANAGED_LABEL } from '../names.js';

/** Objects remembered per namespace and kind; the oldest are forgotten beyond this. */
const MAX_REMEMBERED = 1000;

export interface DevContext extends AdmissionContext {
  /** Remember the object an allowed admission produced, as the cache would see it once stored. */
  remember(body: unknown, result: AdmitResult): void;
}

type Remembered = { pods: Map<string, PodObject>; services: Map<string, V1Service> };

export function devContext(gatewayIP: string, dnsIP: string): DevContext {
  const byNs = new Map<string, Remembered>();
  let unnamed = 0;
  const ctx = admissionContext({
    view: (ns) => {
      const r = byNs.get(ns);
      return namespaceView(
        ns,
        fromLists({ pods: [...(r?.pods.values() ?? [])], services: [...(r?.services.values() ?? [])] }),
        () => undefined,
      );
    },
    runtimeClassOS: () => undefined,
    addresses: { gatewayIP, dnsIP },
  });
  return {
    ...ctx,
    remember(body, result) {
      if (!result.ok || !result.decision.allowed) return;
      const request = (body as { request?: { object?: unknown; operation?: string } }).request;
      const { kind, namespace } = result.decision;
      // Pods from a generateName have no name yet at admission: each is a pod of its own.
      const name = result.decision.name || `<generated ${++unnamed}>`;
      if ((kind !== 'Pod' && kind !== 'Service') || request?.operation === 'DELETE') return;
      const admitted = admittedObject(request?.object, result.review.response.patch);
      if (!admitted) return;
      const r = byNs.get(namespace) ?? { pods: new Map(), services: new Map() };
      byNs.set(namespace, r);
      const list: Map<string, unknown> = kind === 'Pod' ? r.pods : r.services;
      // Only managed Pods, as the webhook's cache watches only those.
      if (kind === 'Pod' && (admitted as PodObject).metadata?.labels?.[MANAGED_LABEL] === undefined)
        return void list.delete(name);
      list.delete(name);
      list.set(name, admitted);
      if (list.size > MAX_REMEMBERED) list.delete(list.keys().next().value!);
    },
  };
}

/** The object with the response's JSONPatch applied (the API server would store that). */
function admittedObject(object: unknown, patch: string | undefined): object | undefined {
  if (typeof object !== 'object' || object === null) return undefined;
  const copy = structuredClone(object);
  if (!patch) return copy;
  try {
    return jsonpatch.applyPatch(
      copy,
      JSON.parse(Buffer.from(patch, 'base64').toString('utf8')) as jsonpatch.Operation[],
      true,
      false,
    ).newDocument;
  } catch {
    return undefined;
  }
}
