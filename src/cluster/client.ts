// A thin JSON-in/JSON-out REST client over client-node's transport (auth, TLS, proxy from KubeConfig).
// Why not the typed APIs: their (de)serializers drop fields unknown to the generated models, turn
// timestamps into Dates and lose list `continue` tokens for CRDs. The controller compares desired
// objects with live ones and must see exactly what the API server returned, and watch events are
// raw JSON anyway, so list and watch must agree on shape.
import { createHash } from 'node:crypto';
import {
  ApiException,
  bufferFromFileOrString,
  createConfiguration,
  HttpMethod,
  KubeConfig,
  PatchStrategy,
  ServerConfiguration,
  type HttpLibrary,
  type RequestContext,
  type ResponseContext,
} from '@kubernetes/client-node';
import { Agent, type Dispatcher } from 'undici';

export type Query = Record<string, string | number | boolean | undefined>;

export interface RequestOptions {
  query?: Query;
  body?: unknown;
  contentType?: string;
}

/** What the rest of wpgw needs from the API server. Tests substitute a fake. */
export interface KubeRest {
  request<T = unknown>(
    method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE',
    path: string,
    opts?: RequestOptions,
  ): Promise<T>;
}

function statusMessage(body: unknown, code: number): string {
  const msg = body && typeof body === 'object' ? (body as { message?: unknown }).message : undefined;
  return typeof msg === 'string' ? `HTTP ${code}: ${msg}` : `HTTP ${code}`;
}

/**
 * One kept-alive connection pool per API server and TLS identity. client-node 2.0 builds a new
 * undici Agent inside KubeConfig.applySecurityAuthentication for every request, so every call paid a
 * new TCP connection and TLS handshake on both sides: in `npm run bench:controller` TLS setup was
 * most of the controller's CPU, and the API server's handshakes came on top. Requests keep
 * client-node's authentication (headers, exec plugins, token files) and only the dispatcher is
 * swapped for a shared one. The key covers the certificate bytes, so rotated client certificates or
 * CAs get a fresh pool. Proxied and plain-HTTP clusters keep client-node's own dispatcher.
 */
export class PooledAuthentication {
  readonly #agents = new Map<string, Dispatcher>();

  constructor(readonly kubeconfig: KubeConfig) {}

  getName(): string {
    return this.kubeconfig.getName();
  }

  /** Agents created so far (one per distinct TLS identity). */
  get pools(): number {
    return this.#agents.size;
  }

  async applySecurityAuthentication(ctx: RequestContext): Promise<void> {
    await this.kubeconfig.applySecurityAuthentication(ctx);
    const agent = this.agentFor();
    if (agent) ctx.setDispatcher(agent);
  }

  private agentFor(): Dispatcher | undefined {
    const cluster = this.kubeconfig.getCurrentCluster();
    const user = this.kubeconfig.getCurrentUser();
    if (!cluster || cluster.proxyUrl || !cluster.server.startsWith('https:')) return undefined;
    // The same TLS options applySecurityAuthentication derives (and the same files it reads).
    const ca = bufferFromFileOrString(cluster.caFile, cluster.caData);
    const cert = bufferFromFileOrString(user?.certFile, user?.certData);
    const key = bufferFromFileOrString(user?.keyFile, user?.keyData);
    const options = {
      ...(ca ? { ca } : {}),
      ...(cert ? { cert } : {}),
      ...(key ? { key } : {}),
      ...(cluster.skipTLSVerify ? { rejectUnauthorized: false } : {}),
      ...(cluster.tlsServerName ? { servername: cluster.tlsServerName } : {}),
    };
    const id = createHash('sha256')
      .update(
        JSON.stringify([
          cluster.server,
          cluster.skipTLSVerify ?? false,
          cluster.tlsServerName ?? '',
          ca?.toString('base64'),
          cert?.toString('base64'),
          key?.toString('base64'),
        ]),
      )
      .digest('hex');
    let agent = this.#agents.get(id);
    if (!agent) {
      const d = this.kubeconfig.createDispatcherOptions(cluster, options);
      if (d.type !== 'agent') return undefined;
      agent = new Agent({ connect: d.connect });
      this.#agents.set(id, agent);
    }
    return agent;
  }
}

/**
 * Requests go through client-node's HTTP layer and authentication, not through a typed API class:
 * those (KubernetesObjectApi among them) deserialize with the generated models, and reaching them
 * at all keeps every model's code in the webhook's and the controller's bundle (build/bundle.ts).
 */
export class RawKubeClient implements KubeRest {
  private readonly server: ServerConfiguration<Record<string, string>>;
  private readonly http: HttpLibrary;
  readonly auth: PooledAuthentication;

  constructor(readonly kubeconfig: KubeConfig) {
    const cluster = kubeconfig.getCurrentCluster();
    if (!cluster) throw new Error('the kubeconfig has no current cluster');
    this.server = new ServerConfiguration(cluster.server, {});
    this.http = createConfiguration({ baseServer: this.server }).httpApi;
    this.auth = new PooledAuthentication(kubeconfig);
  }

  async request<T = unknown>(
    method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE',
    path: string,
    opts: RequestOptions = {},
  ): Promise<T> {
    const text = await this.send(method, path, opts, 'application/json');
    return (text ? JSON.parse(text) : {}) as T;
  }

  /** A GET whose answer is text, not JSON (a pod's log). */
  getText(path: string, query?: Query): Promise<string> {
    return this.send('GET', path, query ? { query } : {}, 'text/plain, */*');
  }

  private async send(
    method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE',
    path: string,
    opts: RequestOptions,
    accept: string,
  ): Promise<string> {
    const ctx: RequestContext = this.server.makeRequestContext(path, HttpMethod[method]);
    ctx.setHeaderParam('Accept', accept);
    ctx.setHeaderParam('User-Agent', USER_AGENT);
    for (const [k, v] of Object.entries(opts.query ?? {})) {
      if (v !== undefined) ctx.setQueryParam(k, String(v));
    }
    if (opts.body !== undefined) {
      ctx.setHeaderParam('Content-Type', opts.contentType ?? 'application/json');
      ctx.setBody(JSON.stringify(opts.body));
    }
    await this.auth.applySecurityAuthentication(ctx);
    return responseText(await this.http.send(ctx).toPromise());
  }
}

/** Who is calling, in the API server's audit log and metrics. */
const USER_AGENT = 'wpgw';

/** The body of a 2xx answer; anything else is an ApiException carrying the API server's Status. */
async function responseText(response: ResponseContext): Promise<string> {
  const text = await response.body.text();
  if (response.httpStatusCode >= 200 && response.httpStatusCode <= 299) return text;
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

export const APPLY_CONTENT_TYPE = PatchStrategy.ServerSideApply;
export const MERGE_PATCH_CONTENT_TYPE = PatchStrategy.MergePatch;
export const JSON_PATCH_CONTENT_TYPE = PatchStrategy.JsonPatch;

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

export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
