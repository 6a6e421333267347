// Every API write the controller makes goes through here: the leader gate (a replica that lost the
// Lease must not write another byte) and the write counters (a converged resync must make none).
import { APPLY_CONTENT_TYPE, MERGE_PATCH_CONTENT_TYPE, errorStatus, type KubeRest } from '../cluster/client.js';
import { collectionPath, kindInfo, objectPath } from '../cluster/kinds.js';
import type { KubeObject } from '../core/desired-types.js';
import { FIELD_MANAGER } from '../names.js';
import type { ControllerMetrics } from './metrics.js';

export class NotLeaderError extends Error {
  constructor() {
    super('not the leader: write refused');
    this.name = 'NotLeaderError';
  }
}

export interface ObjectRef {
  apiVersion: string;
  kind: string;
  namespace?: string;
  name: string;
}

export type WriteVerb = 'apply' | 'patch' | 'delete' | 'create';

export interface WriteCounts {
  total: number;
  /** "verb/Kind" → count. */
  byVerbKind: Record<string, number>;
}

/** What reconcile needs to write; tests substitute a recording fake. */
export interface ObjectWriter {
  apply(obj: KubeObject): Promise<KubeObject>;
  mergePatch(ref: ObjectRef, patch: unknown): Promise<unknown>;
  /** Deletes exactly the object seen (uid + resourceVersion preconditions); a 404 is success. */
  delete(obj: KubeObject): Promise<void>;
  create(ref: Omit<ObjectRef, 'name'>, body: unknown): Promise<unknown>;
}

export interface WriterOptions {
  isLeader: () => boolean;
  metrics?: ControllerMetrics;
  fieldManager?: string;
}

export class Writer implements ObjectWriter {
  private readonly counts: WriteCounts = { total: 0, byVerbKind: {} };
  private readonly manager: string;

  constructor(
    private readonly rest: KubeRest,
    private readonly opts: WriterOptions,
  ) {
    this.manager = opts.fieldManager ?? FIELD_MANAGER;
  }

  writeCounts(): WriteCounts {
    return { total: this.counts.total, byVerbKind: { ...this.counts.byVerbKind } };
  }

  async apply(obj: KubeObject): Promise<KubeObject> {
    this.begin('apply', obj.kind);
    const info = kindInfo(obj.apiVersion, obj.kind);
    return this.rest.request<KubeObject>('PATCH', objectPath(info, obj.metadata.namespace, obj.metadata.name), {
      query: { fieldManager: this.manager, force: true },
      body: obj,
      contentType: APPLY_CONTENT_TYPE,
    });
  }

  async mergePatch(ref: ObjectRef, patch: unknown): Promise<unknown> {
    this.begin('patch', ref.kind);
    return this.rest.request('PATCH', objectPath(kindInfo(ref.apiVersion, ref.kind), ref.namespace, ref.name), {
      query: { fieldManager: this.manager },
      body: patch,
      contentType: MERGE_PATCH_CONTENT_TYPE,
    });
  }

  async delete(obj: KubeObject): Promise<void> {
    this.begin('delete', obj.kind);
    const meta = obj.metadata as KubeObject['metadata'] & { uid?: string; resourceVersion?: string };
    try {
      await this.rest.request('DELETE', objectPath(kindInfo(obj.apiVersion, obj.kind), meta.namespace, meta.name), {
        body: {
          apiVersion: 'v1',
          kind: 'DeleteOptions',
          propagationPolicy: 'Background',
          // Only the object we decided about: not a same-named successor, not one relabelled since.
          ...(meta.uid
            ? {
                preconditions: {
                  uid: meta.uid,
                  ...(meta.resourceVersion ? { resourceVersion: meta.resourceVersion } : {}),
                },
              }
            : {}),
        },
      });
    } catch (err) {
      if (errorStatus(err) !== 404) throw err;
    }
  }

  async create(ref: Omit<ObjectRef, 'name'>, body: unknown): Promise<unknown> {
    this.begin('create', ref.kind);
    return this.rest.request('POST', collectionPath(kindInfo(ref.apiVersion, ref.kind), ref.namespace), {
      query: { fieldManager: this.manager },
      body,
    });
  }

  private begin(verb: WriteVerb, kind: string): void {
    if (!this.opts.isLeader()) throw new NotLeaderError();
    this.counts.total++;
    const k = `${verb}/${kind}`;
    this.counts.byVerbKind[k] = (this.counts.byVerbKind[k] ?? 0) + 1;
    this.opts.metrics?.writes.inc({ verb, kind });
  }
}
