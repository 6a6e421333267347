import { describe, expect, it } from 'vitest';
import { FakeApiServer } from '../lib/fake-api.js';
import { LeaderElector, decideLease, microTime, type LeaseObject } from '../../src/controller/lease.js';

const T0 = Date.parse('2026-03-01T12:00:00Z');

describe('decideLease', () => {
  const held = (holder: string, renewedAt: number, seconds = 15) => ({
    holderIdentity: holder,
    leaseDurationSeconds: seconds,
    renewTime: microTime(renewedAt),
  });

  it('creates a missing lease', () => {
    expect(decideLease({ lease: undefined, identity: 'a', now: T0 })).toEqual({ action: 'create' });
  });

  it('renews its own lease', () => {
    expect(decideLease({ lease: held('a', T0 - 60_000), identity: 'a', now: T0 })).toEqual({ action: 'renew' });
  });

  it('acquires a released lease', () => {
    expect(
      decideLease({ lease: { holderIdentity: null, leaseDurationSeconds: 1 }, identity: 'a', now: T0 }).action,
    ).toBe('acquire');
    expect(decideLease({ lease: { holderIdentity: '' }, identity: 'a', now: T0 }).action).toBe('acquire');
  });

  it('waits while a foreign lease is fresh, measured from when we observed it', () => {
    const d = decideLease({ lease: held('b', T0), identity: 'a', now: T0 + 5_000, observedAt: T0 });
    expect(d).toEqual({ action: 'wait', holder: 'b', until: T0 + 15_000 });
    expect(decideLease({ lease: held('b', T0), identity: 'a', now: T0 + 15_000, observedAt: T0 }).action).toBe(
      'acquire',
    );
  });

  it('is immune to a skewed holder clock: a renewTime in the "past" does not expire a record we just saw change', () => {
    // Holder's clock is 20 s behind ours; it renews every 2 s, so we keep seeing new records.
    const d = decideLease({ lease: held('b', T0 - 20_000), identity: 'a', now: T0 + 1_000, observedAt: T0 });
    expect(d.action).toBe('wait');
  });

  it('takes over a lease whose renewTime is more than two durations old (crashed leader) at once', () => {
    const d = decideLease({ lease: held('b', T0 - 31_000), identity: 'a', now: T0, observedAt: T0 });
    expect(d.action).toBe('acquire');
  });

  it('microTime has six fractional digits', () => {
    expect(microTime(Date.parse('2026-03-01T12:00:00.123Z'))).toBe('2026-03-01T12:00:00.123000Z');
  });
});

/** The Lease the electors below share, as the toolkit's in-memory API server holds it. */
function heldLease(server: FakeApiServer): LeaseObject | undefined {
  return server.get('Lease', 'wpgw-system', 'wpgw-controller') as LeaseObject | undefined;
}

describe('LeaderElector', () => {
  function setup() {
    const server = new FakeApiServer();
    let now = T0;
    const events: string[] = [];
    const mk = (id: string) =>
      new LeaderElector(server, {
        namespace: 'wpgw-system',
        identity: id,
        now: () => now,
        onStartedLeading: () => events.push(`${id}+`),
        onStoppedLeading: () => events.push(`${id}-`),
      });
    return { server, events, mk, advance: (ms: number) => (now += ms) };
  }

  it('one replica leads, the other follows, and takes over only after the lease expires', async () => {
    const { server, events, mk, advance } = setup();
    const a = mk('a');
    const b = mk('b');
    await a.tick();
    await b.tick();
    expect(a.isLeader()).toBe(true);
    expect(b.isLeader()).toBe(false);
    expect(heldLease(server)?.spec?.holderIdentity).toBe('a');

    // a keeps renewing: b keeps waiting.
    for (let i = 0; i < 10; i++) {
      advance(2_000);
      await a.tick();
      await b.tick();
    }
    expect(b.isLeader()).toBe(false);

    // a dies. b first saw a's last record at its last renewal; it waits a full lease duration from then.
    advance(2_000);
    await b.tick();
    advance(12_999);
    await b.tick();
    expect(b.isLeader()).toBe(false);
    advance(1);
    await b.tick();
    expect(b.isLeader()).toBe(true);
    expect(heldLease(server)?.spec?.leaseTransitions).toBe(1);
    expect(events).toEqual(['a+', 'b+']);
  });

  it('a leader that cannot renew stops leading within the renew deadline', async () => {
    const { server, events, mk, advance } = setup();
    const a = mk('a');
    await a.tick();
    expect(a.isLeader()).toBe(true);
    server.unavailable = true;
    advance(9_000);
    await a.tick();
    expect(a.isLeader()).toBe(true);
    advance(1_000);
    // The gate closes at once, even before the next round notices.
    expect(a.isLeader()).toBe(false);
    await a.tick();
    expect(events).toEqual(['a+', 'a-']);
  });

  it('a leader that finds another holder steps down immediately', async () => {
    const { server, events, mk } = setup();
    const a = mk('a');
    await a.tick();
    server.update('Lease', 'wpgw-system', 'wpgw-controller', (l) => void (l.spec.holderIdentity = 'intruder'));
    await a.tick();
    expect(a.isLeader()).toBe(false);
    expect(events).toEqual(['a+', 'a-']);
  });

  it('stop() releases the lease so a successor acquires without waiting', async () => {
    const { server, mk } = setup();
    const a = mk('a');
    const b = mk('b');
    await a.tick();
    await a.stop();
    expect(heldLease(server)?.spec?.holderIdentity).toBeNull();
    await b.tick();
    expect(b.isLeader()).toBe(true);
  });
});
