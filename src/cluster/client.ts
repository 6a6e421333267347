// A thin JSON-in/JSON-out REST client over client-node's transport (auth, TLS, proxy from KubeConfig).
// Why not the typed APIs: their (de)serializers drop fields unknown to the generated models, turn
// timestamps into Dates and lose list `continue` tokens for CRDs. The controller compares desired
// objects with live ones and must see exactly what the API server returned, and watch events are
// raw JSON anyway, so list and watch must agree on shape.
import {
  ApiException,
  HttpMethod,
  KubeConfig,
  KubernetesObjectApi,
  PatchStrategy,
  type KubernetesObject,
  type RequestContext,
  type ResponseContext,
} from '@kubernetes/client-node';

export type Query = Record<string, string | number | boolean | undefined>;

export interface RequestOptions {
  query?: Query;
  body?: unknown;
  contentType?: string;
}

/** What the rest of wpgw needs from the API server. Tests substitute a fake. */
export interface KubeRest {
  request<T = unknown>(method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE', path: string, opts?: RequestOptions): Promise<T>;
}

const RAW = '__wpgw_raw_json__';

class RawApi extends KubernetesObjectApi {
  async send<T>(method: HttpMethod, path: string, opts: RequestOptions): Promise<T> {
    const ctx: RequestContext = this.configuration.baseServer.makeRequestContext(path, method);
    ctx.setHeaderParam('Accept', 'application/json');
    for (const [k, v] of Object.entries(opts.query ?? {})) {
      if (v !== undefined) ctx.setQueryParam(k, String(v));
    }
    if (opts.body !== undefined) {
      ctx.setHeaderParam('Content-Type', opts.contentType ?? 'application/json');
      ctx.setBody(JSON.stringify(opts.body));
    }
    return (await this.requestPromise(ctx, RAW)) as unknown as T;
  }

  protected override async processResponse<T extends KubernetesObject>(response: ResponseContext, type?: string): Promise<T> {
    if (type !== RAW) return super.processResponse<T>(response, type);
    const text = await response.body.text();
    if (response.httpStatusCode >= 200 && response.httpStatusCode <= 299) {
      return (text ? JSON.parse(text) : {}) as T;
    }
    let body: unknown = text;
    try {
      body = JSON.parse(text);
    } catch {
      // keep the text
    }
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(response.headers)) headers[k] = String(v);
    throw new ApiException(response.httpStatusCode, statusMessage(body, response.httpStatusCode), body, headers);
  }
}

function statusMessage(body: unknown, code: number): string {
  const msg = body && typeof body === 'object' ? (body as { message?: unknown }).message : undefined;
  return typeof msg === 'string' ? `HTTP ${code}: ${msg}` : `HTTP ${code}`;
}

export class RawKubeClient implements KubeRest {
  private readonly api: RawApi;

  constructor(readonly kubeconfig: KubeConfig) {
    this.api = kubeconfig.makeApiClient(RawApi);
  }

  request<T = unknown>(method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE', path: string, opts: RequestOptions = {}): Promise<T> {
    return this.api.send<T>(HttpMethod[method], path, opts);
  }
}

export const APPLY_CONTENT_TYPE = PatchStrategy.ServerSideApply;
export const MERGE_PATCH_CONTENT_TYPE = PatchStrategy.MergePatch;

/** HTTP status of an error from the API (ApiException.code, Watch's statusCode, or a Status body). */
export function errorStatus(err: unknown): number | undefined {
  if (!err || typeof err !== 'object') return undefined;
  const e = err as { code?: unknown; statusCode?: unknown };
  if (typeof e.code === 'number') return e.code;
  if (typeof e.statusCode === 'number') return e.statusCode;
  return undefined;
}

export function isNotFound(err: unknown): boolean {
  return errorStatus(err) === 404;
}

export function isConflict(err: unknown): boolean {
  return errorStatus(err) === 409;
}

export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}

/** Loads KUBECONFIG / ~/.kube/config / in-cluster service account, whichever is present. */
export function loadKubeConfig(): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromDefault();
  return kc;
}
