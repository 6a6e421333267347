// Kubernetes Events (core v1) about namespaces, Services and workloads. Each distinct event is
// written once: names are derived from the content, and an event that already exists (another
// replica, an earlier run) is not written again — so a restart on a converged cluster writes none.
import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import { errorMessage, errorStatus, type KubeRest } from '../cluster/client.js';
import { kindInfo, objectPath } from '../cluster/kinds.js';
import { MANAGED_BY_LABEL, MANAGED_BY_VALUE } from '../names.js';
import type { ObjectWriter } from './writer.js';

export const EVENT_COMPONENT = 'wpgw-controller';

export interface EventTarget {
  apiVersion?: string;
  kind: string;
  name: string;
  /** The event's namespace (for a Namespace target: the namespace itself). */
  namespace: string;
  uid?: string;
}

export interface EventSpec {
  target: EventTarget;
  type: 'Normal' | 'Warning';
  reason: string;
  message: string;
}

export interface EventSink {
  /** Resolves true if an Event was written. Never throws. */
  record(ev: EventSpec): Promise<boolean>;
}

const API_VERSIONS: Record<string, string> = {
  Namespace: 'v1',
  Service: 'v1',
  Pod: 'v1',
  Deployment: 'apps/v1',
  StatefulSet: 'apps/v1',
  DaemonSet: 'apps/v1',
  ReplicaSet: 'apps/v1',
  Job: 'batch/v1',
  Rollout: 'argoproj.io/v1alpha1',
  // users' Istio objects a conflict is about (docs/user-policies.md)
  VirtualService: 'networking.istio.io/v1',
  DestinationRule: 'networking.istio.io/v1',
  AuthorizationPolicy: 'security.istio.io/v1',
  PeerAuthentication: 'security.istio.io/v1',
  RequestAuthentication: 'security.istio.io/v1',
};

export function eventName(ev: EventSpec): string {
  const h = createHash('sha256')
    .update(JSON.stringify([ev.target.kind, ev.target.name, ev.target.uid ?? '', ev.type, ev.reason, ev.message]))
    .digest('hex')
    .slice(0, 16);
  const base = ev.target.name
    .toLowerCase()
    .replace(/[^a-z0-9.-]/g, '-')
    .slice(0, 200)
    .replace(/[.-]+$/, '');
  return `${base || 'wpgw'}.wpgw-${h}`;
}

export function eventBody(ev: EventSpec, now: Date, instance: string): Record<string, unknown> {
  const t = now.toISOString().replace(/\.\d+Z$/, 'Z');
  const { target } = ev;
  return {
    apiVersion: 'v1',
    kind: 'Event',
    metadata: { name: eventName(ev), namespace: target.namespace, labels: { [MANAGED_BY_LABEL]: MANAGED_BY_VALUE } },
    involvedObject: {
      apiVersion: target.apiVersion ?? API_VERSIONS[target.kind] ?? 'v1',
      kind: target.kind,
      name: target.name,
      namespace: target.namespace,
      ...(target.uid ? { uid: target.uid } : {}),
    },
    type: ev.type,
    reason: ev.reason,
    message: ev.message.length > 1024 ? `${ev.message.slice(0, 1021)}...` : ev.message,
    source: { component: EVENT_COMPONENT },
    reportingComponent: EVENT_COMPONENT,
    reportingInstance: instance,
    firstTimestamp: t,
    lastTimestamp: t,
    count: 1,
  };
}

export interface EventRecorderOptions {
  instance: string;
  logger: Logger;
  now?: () => Date;
  /** Bound on the in-memory "already written" set. */
  maxRemembered?: number;
}

export class EventRecorder implements EventSink {
  private readonly seen = new Set<string>();

  constructor(
    private readonly rest: KubeRest,
    private readonly writer: Pick<ObjectWriter, 'create'>,
    private readonly opts: EventRecorderOptions,
  ) {}

  async record(ev: EventSpec): Promise<boolean> {
    const name = eventName(ev);
    const key = `${ev.target.namespace}/${name}`;
    if (this.seen.has(key)) return false;
    try {
      try {
        await this.rest.request('GET', objectPath(kindInfo('v1', 'Event'), ev.target.namespace, name));
        this.remember(key);
        return false;
      } catch (err) {
        // Without "get" on events (403) the create below still de-duplicates, via 409.
        if (errorStatus(err) !== 404 && errorStatus(err) !== 403) throw err;
      }
      await this.writer.create(
        { apiVersion: 'v1', kind: 'Event', namespace: ev.target.namespace },
        eventBody(ev, (this.opts.now ?? (() => new Date()))(), this.opts.instance),
      );
      this.remember(key);
      this.opts.logger.info(
        { reason: ev.reason, object: `${ev.target.kind}/${ev.target.name}`, namespace: ev.target.namespace },
        ev.message,
      );
      return true;
    } catch (err) {
      if (errorStatus(err) === 409) {
        this.remember(key);
        return false;
      }
      // Events are best effort: never fail a reconcile because of one.
      this.opts.logger.warn({ err: errorMessage(err), reason: ev.reason }, 'could not record event');
      return false;
    }
  }

  private remember(key: string): void {
    if (this.seen.size >= (this.opts.maxRemembered ?? 10_000)) {
      const first = this.seen.values().next();
      if (!first.done) this.seen.delete(first.value);
    }
    this.seen.add(key);
  }
}
