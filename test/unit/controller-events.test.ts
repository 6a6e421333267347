import { ApiException } from '@kubernetes/client-node';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import type { KubeRest, RequestOptions } from '../../src/cluster/client.js';
import { EventRecorder, eventBody, eventName, type EventSpec } from '../../src/controller/events.js';

const spec: EventSpec = {
  target: { kind: 'Service', name: 'legacy', namespace: 'shop', uid: 'u1' },
  type: 'Normal',
  reason: 'ServiceNudged',
  message: 'hello',
};

class Events implements KubeRest {
  stored = new Map<string, unknown>();
  calls: string[] = [];
  failGet = false;
  forbidGet = false;
  async request<T>(method: string, path: string, opts: RequestOptions = {}): Promise<T> {
    this.calls.push(`${method} ${path}`);
    if (method === 'GET') {
      if (this.failGet) throw new ApiException(500, 'boom', {}, {});
      if (this.forbidGet) throw new ApiException(403, 'forbidden', {}, {});
      const name = path.split('/').at(-1)!;
      if (!this.stored.has(name)) throw new ApiException(404, 'nf', {}, {});
      return this.stored.get(name) as T;
    }
    const body = opts.body as { metadata: { name: string } };
    if (this.stored.has(body.metadata.name)) throw new ApiException(409, 'exists', {}, {});
    this.stored.set(body.metadata.name, body);
    return body as T;
  }
}

function recorder(rest: Events) {
  const writes: unknown[] = [];
  const writer = {
    create: async (_ref: unknown, body: unknown) => {
      writes.push(body);
      return rest.request('POST', '/api/v1/namespaces/shop/events', { body });
    },
  };
  return {
    writes,
    r: new EventRecorder(rest, writer, {
      instance: 'pod-1',
      logger: pino({ level: 'silent' }),
      now: () => new Date('2026-03-01T10:00:00.123Z'),
    }),
  };
}

describe('EventRecorder', () => {
  it('writes a core v1 Event once; repeats are neither written nor even read', async () => {
    const rest = new Events();
    const { r, writes } = recorder(rest);
    expect(await r.record(spec)).toBe(true);
    expect(await r.record(spec)).toBe(false);
    expect(writes).toHaveLength(1);
    expect(rest.calls.filter((c) => c.startsWith('GET'))).toHaveLength(1);
    expect(writes[0]).toMatchObject({
      apiVersion: 'v1',
      kind: 'Event',
      metadata: { name: eventName(spec), namespace: 'shop' },
      involvedObject: { apiVersion: 'v1', kind: 'Service', name: 'legacy', namespace: 'shop', uid: 'u1' },
      reason: 'ServiceNudged',
      type: 'Normal',
      source: { component: 'wpgw-controller' },
      reportingInstance: 'pod-1',
      firstTimestamp: '2026-03-01T10:00:00Z',
      count: 1,
    });
  });

  it('does not re-write an Event that already exists (another replica, a restart)', async () => {
    const rest = new Events();
    rest.stored.set(eventName(spec), {});
    const { r, writes } = recorder(rest);
    expect(await r.record(spec)).toBe(false);
    expect(writes).toHaveLength(0);
  });

  it('different content is a different event; names are valid and deterministic', () => {
    expect(eventName(spec)).toBe(eventName({ ...spec }));
    expect(eventName(spec)).not.toBe(eventName({ ...spec, message: 'other' }));
    expect(eventName({ ...spec, target: { ...spec.target, name: 'A_B' } })).toMatch(/^a-b\.wpgw-[0-9a-f]{16}$/);
    expect((eventBody({ ...spec, message: 'x'.repeat(5000) }, new Date(), 'i').message as string).length).toBe(1024);
  });

  it('works without "get" on events (RBAC): creates, and treats AlreadyExists as done', async () => {
    const rest = new Events();
    rest.forbidGet = true;
    const { r, writes } = recorder(rest);
    expect(await r.record(spec)).toBe(true);
    const { r: r2, writes: writes2 } = recorder(rest);
    expect(await r2.record(spec)).toBe(false);
    expect(writes).toHaveLength(1);
    expect(writes2).toHaveLength(1); // attempted, refused with 409
    expect(await r2.record(spec)).toBe(false);
    expect(writes2).toHaveLength(1);
  });

  it('never throws: a failing API is logged and reported as "not written"', async () => {
    const rest = new Events();
    rest.failGet = true;
    const { r, writes } = recorder(rest);
    expect(await r.record(spec)).toBe(false);
    expect(writes).toHaveLength(0);
  });
});
