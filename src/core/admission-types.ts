// The contract between the pure admission core and the HTTP edge (src/webhook/server.ts).

/** What the core decided, for logs, metrics and the response. */
export interface AdmissionDecision {
  uid: string;
  kind: string;
  namespace: string;
  name: string;
  operation: string;
  allowed: boolean;
  /** patched: a JSONPatch is returned; unchanged: allowed, nothing to do; skipped: not ours; denied. */
  decision: 'patched' | 'unchanged' | 'skipped' | 'denied';
  /** Machine-readable reason (metric label), e.g. "injected", "not_windows", "invalid_outbound". */
  reason: string;
  /** Human-readable message (denials carry it to the user). */
  message?: string;
  warnings: string[];
}

export interface AdmissionReviewResponseBody {
  apiVersion: 'admission.k8s.io/v1';
  kind: 'AdmissionReview';
  response: {
    uid: string;
    allowed: boolean;
    status?: { code: number; message: string; reason?: string };
    patchType?: 'JSONPatch';
    patch?: string;
    warnings?: string[];
  };
}

export type AdmitResult =
  | { ok: true; review: AdmissionReviewResponseBody; decision: AdmissionDecision }
  /** The body is not a usable AdmissionReview: the edge answers 400 with this message. */
  | { ok: false; message: string };

/** Pure handler: a parsed JSON body in, a response out. Never throws for bad input. */
export type AdmissionHandler = (body: unknown) => AdmitResult;
