// The test toolkit's in-memory Kubernetes API: one store of objects with the API server semantics
// the controller relies on (server-set uid/resourceVersion/defaults, 404/409, resourceVersion and
// uid preconditions, server-side apply and merge patch, label-selected lists), served two ways:
// in process as a KubeRest (request()), and over HTTP with streaming watches (listen()), for a real
// KubeConfig-driven client. The real kube-apiserver runs in the e2e suite.
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ApiException, KubeConfig } from '@kubernetes/client-node';
import { expect } from 'vitest';
import type { KubeRest, RequestOptions } from '../../src/cluster/client.js';
import { applyMergePatch } from './merge-patch.js';

export type Obj = Record<string, any> & { metadata: Record<string, any> };

/** The kinds served, by plural; any other path answers 404 (like a CRD that is not installed). */
const KINDS: Record<string, string> = {
  namespaces: 'Namespace',
  services: 'Service',
  pods: 'Pod',
  deployments: 'Deployment',
  statefulsets: 'StatefulSet',
  daemonsets: 'DaemonSet',
  replicasets: 'ReplicaSet',
  jobs: 'Job',
  cronjobs: 'CronJob',
  rollouts: 'Rollout',
  runtimeclasses: 'RuntimeClass',
  ingresses: 'Ingress',
  serviceaccounts: 'ServiceAccount',
  configmaps: 'ConfigMap',
  poddisruptionbudgets: 'PodDisruptionBudget',
  networkpolicies: 'NetworkPolicy',
  gateways: 'Gateway',
  virtualservices: 'VirtualService',
  destinationrules: 'DestinationRule',
  serviceentries: 'ServiceEntry',
  authorizationpolicies: 'AuthorizationPolicy',
  peerauthentications: 'PeerAuthentication',
  requestauthentications: 'RequestAuthentication',
  leases: 'Lease',
  nodes: 'Node',
  events: 'Event',
};

interface Route {
  gv: string;
  kind: string;
  /** '' for cluster-scoped objects and cluster-wide lists. */
  ns: string;
  name?: string;
}

function route(pathname: string): Route | undefined {
  // /api/v1/namespaces/x is the Namespace x itself.
  const n = /^\/api\/v1\/namespaces\/([^/]+)$/.exec(pathname);
  if (n) return { gv: 'v1', kind: 'Namespace', ns: '', name: decodeURIComponent(n[1]!) };
  const m = /^\/(?:api\/(v1)|apis\/([^/]+\/[^/]+))(?:\/namespaces\/([^/]+))?\/([a-z]+)(?:\/([^/]+))?$/.exec(pathname);
  const kind = m ? KINDS[m[4]!] : undefined;
  if (!m || !kind) return undefined;
  return {
    gv: m[1] ?? m[2]!,
    kind,
    ns: m[3] ? decodeURIComponent(m[3]) : '',
    ...(m[5] ? { name: decodeURIComponent(m[5]) } : {}),
  };
}

/** Equality-based label selectors (`a=b,c`), all the controller sends. */
function selectorMatches(sel: string | undefined, labels: Record<string, string> = {}): boolean {
  if (!sel) return true;
  return sel.split(',').every((term) => {
    const [k, v] = term.split('=');
    return v === undefined ? labels[k!] !== undefined : labels[k!] === v;
  });
}

/** The fields an apply body sets, as managedFields' fieldsV1 records them. */
function fieldsOf(o: unknown): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (!o || typeof o !== 'object' || Array.isArray(o)) return out;
  for (const [k, v] of Object.entries(o as Record<string, unknown>)) {
    if (k === 'apiVersion' || k === 'kind' || k === 'name' || k === 'namespace') continue;
    out[`f:${k}`] = v && typeof v === 'object' && !Array.isArray(v) ? fieldsOf(v) : {};
  }
  return out;
}

type EventType = 'ADDED' | 'MODIFIED' | 'DELETED';

interface Watcher {
  kind: string;
  ns: string;
  sel: string | undefined;
  res: ServerResponse;
}

export class FakeApiServer implements KubeRest {
  readonly objects = new Map<string, Obj>();
  /** Every request served: "METHOD path[ content-type]". */
  readonly log: string[] = [];
  /** "Kind/name" whose server-side apply answers 422. */
  failApplyFor = new Set<string>();
  /** ClusterIPs the "allocator" refuses. */
  takenIPs = new Set<string>();
  /** Every request answers 503 while set. */
  unavailable = false;
  /** Called for every change, like a watch event (the reconciler's observe()). */
  onChange: (o: Obj) => void = () => {};
  private rv = 100;
  private ip = 10;
  private watchers: Watcher[] = [];
  private server: Server | undefined;

  private key(kind: string, ns: string, name: string): string {
    return `${kind}/${ns}/${name}`;
  }

  /** Stores an object as a client would have created or changed it (server fields set, watchers told). */
  put(o: Obj): Obj {
    const old = this.get(o.kind, o.metadata.namespace ?? '', o.metadata.name);
    const stored = this.serverify(structuredClone(o), old);
    return this.store(stored, old ? 'MODIFIED' : 'ADDED');
  }

  /** Someone else changes an object (a user, another controller). */
  update(kind: string, ns: string, name: string, fn: (o: Obj) => void): void {
    const o = this.get(kind, ns, name)!;
    fn(o);
    this.store(this.serverify(o, o), 'MODIFIED');
  }

  get(kind: string, ns: string, name: string): Obj | undefined {
    return this.objects.get(this.key(kind, ns, name));
  }

  /** Objects of a kind in one namespace ('' = cluster-scoped), or in all when `ns` is undefined. */
  list(kind: string, ns?: string): Obj[] {
    return [...this.objects.values()].filter(
      (o) => o.kind === kind && (ns === undefined || (o.metadata.namespace ?? '') === ns),
    );
  }

  remove(o: Obj): void {
    this.objects.delete(this.key(o.kind, o.metadata.namespace ?? '', o.metadata.name));
    o.metadata.resourceVersion = String(++this.rv);
    this.changed('DELETED', o);
  }

  writes(): string[] {
    return this.log.filter((l) => !l.startsWith('GET'));
  }

  private store(o: Obj, type: EventType): Obj {
    this.objects.set(this.key(o.kind, o.metadata.namespace ?? '', o.metadata.name), o);
    this.changed(type, o);
    return o;
  }

  private changed(type: EventType, o: Obj): void {
    this.onChange(o);
    for (const w of this.watchers) {
      if (w.kind !== o.kind || (w.ns && w.ns !== o.metadata.namespace) || !selectorMatches(w.sel, o.metadata.labels))
        continue;
      w.res.write(`${JSON.stringify({ type, object: o })}\n`);
    }
  }

  private serverify(o: Obj, old: Obj | undefined): Obj {
    o.metadata.uid ??= old?.metadata.uid ?? `uid-${o.kind}-${o.metadata.name}`;
    o.metadata.resourceVersion = String(++this.rv);
    o.metadata.creationTimestamp ??= old?.metadata.creationTimestamp ?? '2026-01-01T00:00:00Z';
    if (o.kind === 'Service') {
      o.spec ??= {};
      o.spec.type ??= 'ClusterIP';
      o.spec.clusterIP ??= old?.spec?.clusterIP ?? `10.96.0.${++this.ip}`;
      o.spec.ports = (o.spec.ports ?? []).map((p: Record<string, unknown>) => ({ protocol: 'TCP', ...p }));
    }
    if (o.kind === 'Deployment') {
      o.spec ??= {};
      o.spec.strategy ??= { type: 'RollingUpdate' };
      o.spec.revisionHistoryLimit ??= 10;
    }
    return o;
  }

  /** KubeRest, in process: what the client's request() would get from the API server. */
  async request<T>(method: string, path: string, opts: RequestOptions = {}): Promise<T> {
    this.log.push(`${method} ${path}${opts.contentType ? ` ${opts.contentType}` : ''}`);
    if (this.unavailable) throw new ApiException(503, 'unavailable', {}, {});
    const r = route(path);
    if (!r) throw new ApiException(404, `no route ${path}`, { code: 404 }, {});
    return this.serve<T>(method, r, opts);
  }

  private serve<T>(method: string, r: Route, opts: RequestOptions): T {
    const { kind, ns, name } = r;
    const existing = name ? this.get(kind, ns, name) : undefined;
    const notFound = () => new ApiException(404, 'not found', { code: 404 }, {});
    switch (method) {
      case 'GET': {
        if (!name) {
          const sel = opts.query?.['labelSelector'];
          const items = this.list(kind, ns || undefined).filter((o) =>
            selectorMatches(sel === undefined ? undefined : String(sel), o.metadata.labels),
          );
          return structuredClone({ kind: 'List', metadata: { resourceVersion: String(this.rv) }, items }) as T;
        }
        if (!existing) throw notFound();
        return structuredClone(existing) as T;
      }
      case 'POST': {
        const body = structuredClone(opts.body as Obj);
        body.apiVersion ??= r.gv;
        body.kind ??= kind;
        if (ns) body.metadata.namespace = ns;
        if (this.get(kind, ns, body.metadata.name)) throw new ApiException(409, 'exists', {}, {});
        return structuredClone(this.put(body)) as T;
      }
      case 'PUT': {
        const body = structuredClone(opts.body as Obj);
        if (!existing) throw notFound();
        if (body.metadata.resourceVersion !== existing.metadata.resourceVersion)
          throw new ApiException(409, 'conflict', {}, {});
        body.apiVersion ??= r.gv;
        body.kind ??= kind;
        return structuredClone(this.store(this.serverify(body, existing), 'MODIFIED')) as T;
      }
      case 'PATCH': {
        if (opts.contentType === 'application/apply-patch+yaml') {
          expect(opts.query?.['fieldManager']).toBe('wpgw');
          expect(String(opts.query?.['force'])).toBe('true');
          const body = structuredClone(opts.body as Obj);
          if (this.failApplyFor.has(`${body.kind}/${body.metadata.name}`))
            throw new ApiException(422, 'invalid', {}, {});
          if (!existing && this.takenIPs.has(body.spec?.clusterIP))
            throw new ApiException(422, 'provided IP is already allocated', {}, {});
          const merged = applyMergePatch(existing ?? {}, body) as Obj;
          merged.metadata.managedFields = [{ manager: 'wpgw', operation: 'Apply', fieldsV1: fieldsOf(body) }];
          return structuredClone(this.store(this.serverify(merged, existing), existing ? 'MODIFIED' : 'ADDED')) as T;
        }
        expect(opts.contentType).toBe('application/merge-patch+json');
        if (!existing) throw notFound();
        // Like the API server: a resourceVersion in a merge patch is a precondition.
        const rv = (opts.body as { metadata?: { resourceVersion?: string } }).metadata?.resourceVersion;
        if (rv !== undefined && rv !== existing.metadata.resourceVersion)
          throw new ApiException(409, 'conflict', {}, {});
        return structuredClone(
          this.store(this.serverify(applyMergePatch(existing, opts.body) as Obj, existing), 'MODIFIED'),
        ) as T;
      }
      case 'DELETE': {
        if (!existing) throw notFound();
        const pre = (opts.body as { preconditions?: { uid?: string; resourceVersion?: string } } | undefined)
          ?.preconditions;
        if (pre?.uid && pre.uid !== existing.metadata.uid) throw new ApiException(409, 'uid precondition', {}, {});
        if (pre?.resourceVersion && pre.resourceVersion !== existing.metadata.resourceVersion)
          throw new ApiException(409, 'rv precondition', {}, {});
        this.remove(existing);
        return { kind: 'Status', status: 'Success' } as T;
      }
      default:
        throw new ApiException(405, `method ${method}`, {}, {});
    }
  }

  /** Serves the same store over plain HTTP (watches included); resolves to a KubeConfig for it. */
  async listen(): Promise<KubeConfig> {
    const server = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () =>
        this.http(
          req.method ?? 'GET',
          new URL(req.url ?? '/', 'http://x'),
          body,
          req.headers['content-type'] ?? '',
          res,
        ),
      );
    });
    this.server = server;
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const kc = new KubeConfig();
    kc.loadFromOptions({
      // Plain HTTP: client-node only allows http:// with skipTLSVerify.
      clusters: [
        { name: 'c', server: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, skipTLSVerify: true },
      ],
      users: [{ name: 'u', token: 't' }],
      contexts: [{ name: 'ctx', cluster: 'c', user: 'u' }],
      currentContext: 'ctx',
    });
    return kc;
  }

  private http(method: string, url: URL, body: string, contentType: string, res: ServerResponse): void {
    const send = (code: number, o: unknown) => {
      res.writeHead(code, { 'content-type': 'application/json' });
      res.end(JSON.stringify(o));
    };
    const r = route(url.pathname);
    const sel = url.searchParams.get('labelSelector') ?? undefined;
    if (r && method === 'GET' && !r.name && url.searchParams.get('watch') === 'true') {
      this.log.push(`WATCH ${url.pathname}`);
      res.writeHead(200, { 'content-type': 'application/json' });
      if (url.searchParams.get('sendInitialEvents') === 'true') {
        // A streaming list: every object as ADDED, then the bookmark that ends the initial events.
        for (const o of this.list(r.kind, r.ns || undefined).filter((x) => selectorMatches(sel, x.metadata.labels)))
          res.write(`${JSON.stringify({ type: 'ADDED', object: o })}\n`);
        res.write(
          `${JSON.stringify({ type: 'BOOKMARK', object: { metadata: { resourceVersion: String(this.rv), annotations: { 'k8s.io/initial-events-end': 'true' } } } })}\n`,
        );
      }
      const w: Watcher = { kind: r.kind, ns: r.ns, sel, res };
      this.watchers.push(w);
      res.on('close', () => (this.watchers = this.watchers.filter((x) => x !== w)));
      return;
    }
    const query = Object.fromEntries(url.searchParams);
    const ct = contentType.split(';')[0]!.trim();
    this.request(method, url.pathname, {
      ...(body ? { body: JSON.parse(body) as unknown } : {}),
      ...(ct ? { contentType: ct } : {}),
      query,
    })
      .then((o) => send(method === 'POST' ? 201 : 200, o))
      .catch((e: unknown) => {
        const code = e instanceof ApiException ? e.code : 500;
        send(code, { kind: 'Status', code, message: (e as Error).message });
      });
  }

  close(): Promise<void> {
    for (const w of this.watchers) w.res.destroy();
    const server = this.server;
    if (!server) return Promise.resolve();
    server.closeAllConnections();
    return new Promise((r) => server.close(() => r()));
  }
}
