// Maps request-level failures (mostly fastify's body parsing errors) to a status and a message
// specific enough for whoever misconfigured the caller. Bodies are always `{ "error": message }`.

export const MESSAGES = {
  unsupportedMediaType: 'Content-Type must be application/json (an admission.k8s.io/v1 AdmissionReview)',
  invalidJson: 'request body is not valid JSON',
  emptyBody: 'request body is empty; expected an admission.k8s.io/v1 AdmissionReview',
  protoPoisoning: 'request body contains a forbidden "__proto__" or "constructor.prototype" key',
  internal: 'internal error while admitting the request',
  bodyTooLarge: (limit: number) => `request body exceeds the ${limit} byte limit`,
} as const;

/** Raised by our JSON parser when secure parsing refused a body that is otherwise valid JSON. */
export const PROTO_POISONING_CODE = 'WPGW_PROTO_POISONING';

export interface HttpFailure {
  status: number;
  message: string;
}

export function describeRequestError(err: unknown, bodyLimit: number): HttpFailure {
  const e = err as { code?: unknown; statusCode?: unknown; message?: unknown } | null;
  switch (e?.code) {
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return { status: 415, message: MESSAGES.unsupportedMediaType };
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return { status: 413, message: MESSAGES.bodyTooLarge(bodyLimit) };
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return { status: 400, message: MESSAGES.invalidJson };
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return { status: 400, message: MESSAGES.emptyBody };
    case PROTO_POISONING_CODE:
      return { status: 400, message: MESSAGES.protoPoisoning };
  }
  const status = typeof e?.statusCode === 'number' ? e.statusCode : 500;
  if (status >= 400 && status < 500 && typeof e?.message === 'string') return { status, message: e.message };
  return { status: 500, message: MESSAGES.internal };
}
