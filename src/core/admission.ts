// AdmissionReview in, AdmissionReview out. Pure: the cluster is seen only through AdmissionContext.
import type { V1Service } from '@kubernetes/client-node';
import type { AdmissionDecision, AdmissionReviewResponseBody, AdmitResult } from './admission-types.js';
import type { AdmissionContext } from './context.js';
import { jsonDiff, type JsonPatchOp } from './json-diff.js';
import { mutatePod, type PodLike, type PodOutcome } from './pod.js';
import { mutateService, type ServiceOutcome } from './service.js';
import { DEFAULT_CLUSTER_DOMAIN } from '../names.js';

interface ParsedRequest {
  uid: string;
  kind: string;
  group: string;
  operation: string;
  namespace: string;
  name: string;
  subResource?: string;
  object?: Record<string, unknown>;
}

export interface AdmitOptions {
  clusterDomain?: string;
}

/** Decides one AdmissionReview. Never throws: bad input becomes {ok:false} (HTTP 400). */
export function admit(body: unknown, ctx: AdmissionContext, opts: AdmitOptions = {}): AdmitResult {
  const parsed = parseReview(body);
  if (typeof parsed === 'string') return { ok: false, message: parsed };
  const req = parsed;
  const base = { uid: req.uid, kind: req.kind, namespace: req.namespace, name: req.name, operation: req.operation };

  if (req.subResource || req.group !== '' || (req.kind !== 'Pod' && req.kind !== 'Service')) {
    return allow(base, 'skipped', 'unsupported_resource', []);
  }
  if (req.operation !== 'CREATE' && !(req.operation === 'UPDATE' && req.kind === 'Service')) {
    return allow(base, 'skipped', 'unsupported_operation', []);
  }
  const object = req.object;
  if (!object) return { ok: false, message: `request.object is required for ${req.operation} of a ${req.kind}` };
  const shapeError = checkShape(object, req.kind);
  if (shapeError) return { ok: false, message: `request.object is not a valid ${req.kind}: ${shapeError}` };

  let outcome: PodOutcome | ServiceOutcome;
  try {
    outcome =
      req.kind === 'Pod'
        ? mutatePod({
            pod: object as PodLike,
            namespace: req.namespace,
            ctx,
            clusterDomain: opts.clusterDomain ?? DEFAULT_CLUSTER_DOMAIN,
          })
        : mutateService(object as V1Service, req.namespace, ctx);
  } catch (e) {
    // Only reachable with objects the API server would never send (fields of the wrong type).
    return { ok: false, message: `request.object could not be processed as a ${req.kind}: ${(e as Error).message}` };
  }

  if (outcome.action === 'deny') {
    const decision: AdmissionDecision = {
      ...base,
      allowed: false,
      decision: 'denied',
      reason: outcome.reason,
      message: outcome.message,
      warnings: [],
    };
    const code = outcome.reason === 'no_gateway' || outcome.reason === 'no_dns_service' ? 503 : 400;
    return {
      ok: true,
      decision,
      review: reviewBody({
        uid: req.uid,
        allowed: false,
        status: { code, message: outcome.message, reason: code === 503 ? 'ServiceUnavailable' : 'BadRequest' },
      }),
    };
  }
  if (outcome.action === 'skip') return allow(base, 'skipped', outcome.reason, outcome.warnings);

  const after = 'pod' in outcome ? outcome.pod : outcome.service;
  let patch: JsonPatchOp[];
  let patchText: string;
  try {
    patch = jsonDiff(...diffable(object, after as Record<string, unknown>));
    // Serialized here too: the patch shares the object's added values (no deep copy), so an object
    // nested deeper than the stack allows fails here, not later as a 500.
    patchText = JSON.stringify(patch);
  } catch (e) {
    // Only objects nested deeper than any real Pod or Service get here (the diff recurses).
    return { ok: false, message: `request.object could not be diffed: ${(e as Error).message}` };
  }
  if (patch.length === 0) return allow(base, 'unchanged', outcome.reason, outcome.warnings);
  const decision: AdmissionDecision = {
    ...base,
    allowed: true,
    decision: 'patched',
    reason: outcome.reason,
    warnings: outcome.warnings,
  };
  return {
    ok: true,
    decision,
    review: reviewBody({
      uid: req.uid,
      allowed: true,
      patchType: 'JSONPatch',
      patch: Buffer.from(patchText).toString('base64'),
      ...(outcome.warnings.length > 0 ? { warnings: outcome.warnings } : {}),
    }),
  };
}

function allow(
  base: Omit<AdmissionDecision, 'allowed' | 'decision' | 'reason' | 'warnings'>,
  decision: 'skipped' | 'unchanged',
  reason: string,
  warnings: string[],
): AdmitResult {
  return {
    ok: true,
    decision: { ...base, allowed: true, decision, reason, warnings },
    review: reviewBody({ uid: base.uid, allowed: true, ...(warnings.length > 0 ? { warnings } : {}) }),
  };
}

function reviewBody(response: AdmissionReviewResponseBody['response']): AdmissionReviewResponseBody {
  return { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response };
}

// managedFields can be large and never change here; skipping them keeps diffing cheap (as Istio does).
// The mutations copy metadata with a spread, so both sides usually hold the same managedFields
// array, which the diff passes over without walking it: then no copies are needed.
function diffable(before: Record<string, unknown>, after: Record<string, unknown>): [object, object] {
  const managed = (o: Record<string, unknown>) => (o.metadata as Record<string, unknown> | undefined)?.managedFields;
  if (managed(before) === managed(after)) return [before, after];
  return [withoutManagedFields(before), withoutManagedFields(after)];
}

function withoutManagedFields(obj: Record<string, unknown>): Record<string, unknown> {
  const meta = obj.metadata as Record<string, unknown> | undefined;
  if (!meta || !('managedFields' in meta)) return obj;
  const { managedFields: _m, ...rest } = meta;
  return { ...obj, metadata: rest };
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Validates the envelope; returns the request or a specific message. */
function parseReview(body: unknown): ParsedRequest | string {
  if (!isObject(body)) return 'body must be a JSON object (an AdmissionReview)';
  if (body.apiVersion !== 'admission.k8s.io/v1') {
    return `apiVersion must be "admission.k8s.io/v1", got ${JSON.stringify(body.apiVersion) ?? 'nothing'}`;
  }
  if (body.kind !== 'AdmissionReview')
    return `kind must be "AdmissionReview", got ${JSON.stringify(body.kind) ?? 'nothing'}`;
  const r = body.request;
  if (!isObject(r)) return 'request must be an object';
  if (typeof r.uid !== 'string' || r.uid.length === 0) return 'request.uid must be a non-empty string';
  if (!isObject(r.kind) || typeof r.kind.kind !== 'string')
    return 'request.kind must be an object with a string "kind"';
  if (r.kind.group !== undefined && typeof r.kind.group !== 'string') return 'request.kind.group must be a string';
  if (typeof r.operation !== 'string') return 'request.operation must be a string';
  if (r.object !== undefined && r.object !== null && !isObject(r.object)) return 'request.object must be an object';
  const object = isObject(r.object) ? r.object : undefined;
  const meta = object?.metadata;
  if (meta !== undefined && !isObject(meta)) return 'request.object.metadata must be an object';
  const namespace =
    typeof r.namespace === 'string' && r.namespace
      ? r.namespace
      : typeof meta?.namespace === 'string'
        ? meta.namespace
        : '';
  if (!namespace && (r.operation === 'CREATE' || r.operation === 'UPDATE')) return 'request.namespace is required';
  const name =
    typeof r.name === 'string' && r.name
      ? r.name
      : typeof meta?.name === 'string'
        ? meta.name
        : typeof meta?.generateName === 'string'
          ? `${meta.generateName}*`
          : '';
  const out: ParsedRequest = {
    uid: r.uid,
    kind: r.kind.kind,
    group: (r.kind.group as string | undefined) ?? '',
    operation: r.operation,
    namespace,
    name,
  };
  if (typeof r.subResource === 'string' && r.subResource) out.subResource = r.subResource;
  if (object) out.object = object;
  return out;
}

const STRING_MAPS = ['labels', 'annotations'] as const;

/**
 * Checks the fields the mutations read have the types the API server would give them (the webhook
 * gets only what the API server accepted; `wpgw render` gets whatever a file holds).
 */
export function checkShape(object: Record<string, unknown>, kind: string): string | undefined {
  const meta = object.metadata;
  if (meta !== undefined) {
    if (!isObject(meta)) return 'metadata must be an object';
    for (const key of STRING_MAPS) {
      const m = meta[key];
      if (m === undefined || m === null) continue;
      if (!isObject(m)) return `metadata.${key} must be a map of strings`;
      // for-in, not Object.entries: no array of pairs per admission (own keys only: JSON has no others).
      for (const k in m) {
        const v = m[k];
        if (typeof v === 'string' || !Object.hasOwn(m, k)) continue;
        // YAML reads unquoted true, false, 3 and null as non-strings; Kubernetes wants strings.
        const hint = typeof v === 'boolean' || typeof v === 'number' || v === null ? ` (quote it: "${String(v)}")` : '';
        return `metadata.${key}["${k.slice(0, 63)}"] must be a string${hint}`;
      }
    }
  }
  const spec = object.spec;
  if (spec === undefined || spec === null) return kind === 'Pod' ? 'spec is required' : undefined;
  if (!isObject(spec)) return 'spec must be an object';
  if (kind === 'Pod') {
    if (!Array.isArray(spec.containers)) return 'spec.containers must be a list';
    for (const key of ['initContainers', 'hostAliases', 'ephemeralContainers'] as const) {
      const v = spec[key];
      if (v !== undefined && v !== null && !Array.isArray(v)) return `spec.${key} must be a list`;
    }
    for (const key of ['containers', 'initContainers'] as const) {
      if ((spec[key] as unknown[] | undefined)?.some((c) => !isObject(c))) return `spec.${key} must hold objects`;
    }
    if (
      (spec.hostAliases as unknown[] | undefined)?.some(
        (h) => !isObject(h) || (h.hostnames !== undefined && !Array.isArray(h.hostnames)),
      )
    ) {
      return 'spec.hostAliases must hold objects with a hostnames list';
    }
    for (const key of ['nodeSelector', 'os', 'affinity', 'securityContext', 'dnsConfig'] as const) {
      const v = spec[key];
      if (v !== undefined && v !== null && !isObject(v)) return `spec.${key} must be an object`;
    }
  } else {
    if (spec.selector !== undefined && spec.selector !== null && !isObject(spec.selector))
      return 'spec.selector must be a map of strings';
    if (
      spec.ports !== undefined &&
      spec.ports !== null &&
      (!Array.isArray(spec.ports) || spec.ports.some((p) => !isObject(p)))
    ) {
      return 'spec.ports must be a list of objects';
    }
  }
  return undefined;
}
