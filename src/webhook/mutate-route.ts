// POST /mutate: AdmissionReview (admission.k8s.io/v1) in, AdmissionReview out. The pure core
// decides; this file owns the HTTP contract, the per-admission log line and the metrics, and
// makes sure a throwing handler costs one 500, never the process.

import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { AdmissionHandler, AdmitResult } from '../core/admission-types.js';
import { MESSAGES, PROTO_POISONING_CODE } from './http-errors.js';
import { type AdmissionMetrics, LabelGuard } from './metrics.js';

export interface MutateRouteOptions {
  handler: AdmissionHandler;
  metrics: AdmissionMetrics;
  bodyLimit: number;
}

// Typed loosely over the server type: the route works on any fastify instance (http or https).
type AnyFastify = FastifyInstance<any, any, any, any>;

export function registerMutateRoute(app: AnyFastify, opts: MutateRouteOptions): void {
  installJsonParser(app, opts.bodyLimit);
  const m = opts.metrics;
  const kinds = new LabelGuard();
  const operations = new LabelGuard(10);
  const reasons = new LabelGuard(100);

  app.post('/mutate', { bodyLimit: opts.bodyLimit }, async (request: FastifyRequest, reply: FastifyReply) => {
    // Fastify answers 415 for other types itself; a bodyless request without a type lands here.
    if (!isJson(request.headers['content-type'])) return fail(reply, m, 415, MESSAGES.unsupportedMediaType);
    if (request.body === undefined) return fail(reply, m, 400, MESSAGES.emptyBody);

    const peek = peekRequest(request.body);
    m.count.request(kinds.value(peek.kind), operations.value(peek.operation));

    let result: AdmitResult;
    try {
      result = opts.handler(request.body);
      if (!isAdmitResult(result)) throw new Error('admission handler returned a malformed result');
    } catch (err) {
      m.handlerErrors.inc();
      request.log.error({ err, uid: peek.uid, kind: peek.kind, operation: peek.operation }, 'admission handler failed');
      return fail(reply, m, 500, MESSAGES.internal);
    }

    const latencyMs = reply.elapsedTime;
    m.duration.observe(latencyMs / 1000);
    if (!result.ok) {
      request.log.warn(
        { uid: peek.uid, status: 400, error: result.message, latency_ms: round(latencyMs) },
        'admission request rejected',
      );
      return fail(reply, m, 400, result.message);
    }

    const d = result.decision;
    m.count.decision(kinds.value(d.kind), d.decision, reasons.value(d.reason));
    request.log.info(
      {
        uid: d.uid,
        kind: d.kind,
        namespace: d.namespace,
        name: d.name,
        operation: d.operation,
        allowed: d.allowed,
        decision: d.decision,
        reason: d.reason,
        warnings: Array.isArray(d.warnings) ? d.warnings.length : 0,
        latency_ms: round(latencyMs),
      },
      'admission',
    );
    return reply.code(200).type('application/json').send(result.review);
  });
}

function fail(reply: FastifyReply, m: AdmissionMetrics, status: number, message: string): FastifyReply {
  m.badRequests.inc({ status: String(status) });
  return reply.code(status).type('application/json').send({ error: message });
}

/**
 * The only body parser: application/json through fastify's secure parser (rejects "__proto__"
 * and "constructor.prototype" keys). Every other content type gets fastify's 415.
 */
function installJsonParser(app: AnyFastify, bodyLimit: number): void {
  const secureParse = app.getDefaultJsonParser('error', 'error');
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('application/json', { parseAs: 'string', bodyLimit }, (req, body, done) => {
    secureParse(req, body as string, (err: Error | null, value?: unknown) => {
      if (err && (err as { code?: string }).code === 'FST_ERR_CTP_INVALID_JSON_BODY' && isPlainJson(body as string)) {
        // Valid JSON that secure parsing refused: a prototype-poisoning attempt, say so.
        done(
          Object.assign(new Error(MESSAGES.protoPoisoning), { code: PROTO_POISONING_CODE, statusCode: 400 }),
          undefined,
        );
        return;
      }
      done(err, value);
    });
  });
}

function isPlainJson(body: string): boolean {
  try {
    JSON.parse(body);
    return true;
  } catch {
    return false;
  }
}

// The media type before any parameters, case-insensitive; one test instead of split/trim/lower
// copies on every admission.
const JSON_MEDIA_TYPE_RE = /^\s*application\/json\s*(?:;|$)/i;

function isJson(contentType: string | undefined): boolean {
  return contentType !== undefined && JSON_MEDIA_TYPE_RE.test(contentType);
}

/** uid/kind/operation from an unvalidated body, for metrics and logs before the core runs. */
function peekRequest(body: unknown): { uid?: unknown; kind?: unknown; operation?: unknown } {
  const req = (body as { request?: unknown } | null)?.request;
  if (typeof req !== 'object' || req === null) return {};
  const r = req as { uid?: unknown; kind?: { kind?: unknown }; operation?: unknown };
  const uid = typeof r.uid === 'string' ? r.uid.slice(0, 64) : undefined;
  const kind = typeof r.kind === 'object' && r.kind !== null ? r.kind.kind : undefined;
  return {
    uid,
    kind: typeof kind === 'string' ? kind.slice(0, 64) : undefined,
    operation: typeof r.operation === 'string' ? r.operation.slice(0, 16) : undefined,
  };
}

function isAdmitResult(r: unknown): r is AdmitResult {
  if (typeof r !== 'object' || r === null) return false;
  const x = r as { ok?: unknown; message?: unknown; review?: unknown; decision?: unknown };
  if (x.ok === false) return typeof x.message === 'string';
  return (
    x.ok === true &&
    typeof x.review === 'object' &&
    x.review !== null &&
    typeof x.decision === 'object' &&
    x.decision !== null
  );
}

function round(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}
