// Generated certificates: SANs, sha256 signatures, CA/leaf roles, and the dev-mode directory store.

import { X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer as createTlsServer } from 'node:tls';
import { afterEach, describe, expect, it } from 'vitest';
import {
  BACKDATE_MS,
  generateCa,
  generateLeaf,
  isIssuedBy,
  sansOf,
  serviceDnsNames,
  webhookIdentity,
} from '../../src/tls/certs.js';
import { dirCertStore } from '../../src/tls/dir-store.js';
import { startManagedTls } from '../../src/tls/managed-tls.js';
import { DEFAULT_ROTATION_POLICY } from '../../src/tls/rotation.js';
import { captureLogs, handshake } from './webhook-helpers.js';

const DAY = 24 * 60 * 60_000;
const identity = webhookIdentity({
  service: 'wpgw',
  namespace: 'wpgw-system',
  extraNames: ['localhost', '127.0.0.1', '::1'],
});

describe('identity', () => {
  it('lists the four Service names and splits extra names into DNS and IP SANs', () => {
    expect(serviceDnsNames('wpgw', 'wpgw-system')).toEqual([
      'wpgw',
      'wpgw.wpgw-system',
      'wpgw.wpgw-system.svc',
      'wpgw.wpgw-system.svc.cluster.local',
    ]);
    expect(identity).toEqual({
      dnsNames: ['wpgw', 'wpgw.wpgw-system', 'wpgw.wpgw-system.svc', 'wpgw.wpgw-system.svc.cluster.local', 'localhost'],
      ipAddresses: ['127.0.0.1', '::1'],
    });
    expect(serviceDnsNames('a', 'b', 'corp.example')[3]).toBe('a.b.svc.corp.example');
  });
});

describe.each(['ec', 'rsa'] as const)('generated CA + leaf (%s)', (keyType) => {
  it('has the right roles, SANs, signature hash and validity', async () => {
    const now = new Date();
    const ca = await generateCa({ now, validityMs: 365 * DAY, keyType });
    const leaf = await generateLeaf({ ca, identity, now, validityMs: 30 * DAY });
    const caX = new X509Certificate(ca.cert);
    const leafX = new X509Certificate(leaf.cert);

    expect(caX.ca).toBe(true);
    expect(leafX.ca).toBe(false);
    expect(caX.subject).toMatch(/^CN=wpgw-ca-\d+\nO=wpgw$/);
    expect(leafX.issuer).toBe(caX.subject);
    expect(isIssuedBy(leafX, caX)).toBe(true);
    expect(leafX.verify(caX.publicKey)).toBe(true);

    for (const cert of [caX, leafX]) {
      expect(cert.signatureAlgorithm).toMatch(/sha256/i);
      expect(cert.signatureAlgorithm).toBe(keyType === 'ec' ? 'ecdsa-with-SHA256' : 'sha256WithRSAEncryption');
      expect(cert.publicKey.asymmetricKeyType).toBe(keyType);
    }
    expect(sansOf(leafX).dnsNames).toEqual(identity.dnsNames);
    expect(leafX.subjectAltName).toContain('IP Address:127.0.0.1');
    expect(leafX.checkIP('127.0.0.1')).toBe('127.0.0.1');
    expect(leafX.checkIP('::1')).toBeDefined();
    for (const name of identity.dnsNames) expect(leafX.checkHost(name)).toBe(name);
    expect(leafX.checkHost('evil.example')).toBeUndefined();
    expect(leafX.keyUsage).toEqual(['1.3.6.1.5.5.7.3.1']); // serverAuth only

    expect(leafX.validFromDate.getTime()).toBe(Math.floor((now.getTime() - BACKDATE_MS) / 1000) * 1000);
    expect(leafX.validToDate.getTime()).toBe(Math.floor((now.getTime() + 30 * DAY) / 1000) * 1000);
  });
});

describe('leaf limits', () => {
  it('never outlives its CA', async () => {
    const now = new Date();
    const ca = await generateCa({ now, validityMs: 2 * DAY });
    const leaf = new X509Certificate((await generateLeaf({ ca, identity, now, validityMs: 30 * DAY })).cert);
    expect(leaf.validToDate.getTime()).toBe(new X509Certificate(ca.cert).validToDate.getTime());
  });

  it('gives every CA a distinct subject, so overlapping bundles are unambiguous', async () => {
    const a = await generateCa({ now: new Date(1_700_000_000_000), validityMs: DAY });
    const b = await generateCa({ now: new Date(1_700_000_001_000), validityMs: DAY });
    expect(new X509Certificate(a.cert).subject).not.toBe(new X509Certificate(b.cert).subject);
  });

  it('passes a real TLS handshake for every Service name', async () => {
    const now = new Date();
    const ca = await generateCa({ now, validityMs: DAY });
    const leaf = await generateLeaf({ ca, identity, now, validityMs: DAY });
    const server = createTlsServer({ ...leaf, minVersion: 'TLSv1.2' }, (s) => s.end());
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as { port: number }).port;
    try {
      for (const servername of identity.dnsNames) {
        expect((await handshake(port, { ca: ca.cert, servername })).ok).toBe(true);
      }
      const wrong = await handshake(port, { ca: ca.cert, servername: 'other.wpgw-system.svc' });
      expect(wrong.ok).toBe(false);
      expect(wrong.error).toMatch(/ERR_TLS_CERT_ALTNAME_INVALID/);
    } finally {
      server.close();
    }
  });
});

describe('dev mode: certificates in a directory', () => {
  const dirs: string[] = [];
  afterEach(async () => {
    for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
  });
  const tempDir = async (): Promise<string> => {
    const d = await mkdtemp(join(tmpdir(), 'wpgw-certs-'));
    dirs.push(d);
    return join(d, 'certs');
  };

  it('creates CA + leaf files (keys private) and reuses them on the next start', async () => {
    const dir = await tempDir();
    const { logger } = captureLogs();
    const first = await startManagedTls({ store: dirCertStore(dir), identity, logger });
    first.close();
    for (const f of ['ca.crt', 'ca.key', 'tls.crt', 'tls.key']) expect((await stat(join(dir, f))).isFile()).toBe(true);
    expect((await stat(join(dir, 'ca.key'))).mode & 0o777).toBe(0o600);
    expect((await stat(join(dir, 'tls.key'))).mode & 0o777).toBe(0o600);
    expect(await readFile(join(dir, 'tls.crt'), 'utf8')).toBe(first.current().cert);
    expect(first.caBundle()).toBe(await readFile(join(dir, 'ca.crt'), 'utf8'));

    const second = await startManagedTls({ store: dirCertStore(dir), identity, logger });
    second.close();
    expect(second.current()).toEqual(first.current());
    expect(second.caBundle()).toBe(first.caBundle());
  });

  it('renews only the leaf when the SANs change, keeping the CA the developer trusts', async () => {
    const dir = await tempDir();
    const { logger } = captureLogs();
    const first = await startManagedTls({ store: dirCertStore(dir), identity, logger });
    first.close();
    const more = { ...identity, dnsNames: [...identity.dnsNames, 'wpgw.dev.internal'] };
    const second = await startManagedTls({ store: dirCertStore(dir), identity: more, logger });
    second.close();
    expect(second.caBundle()).toBe(first.caBundle());
    expect(second.current().cert).not.toBe(first.current().cert);
    expect(new X509Certificate(second.current().cert).checkHost('wpgw.dev.internal')).toBe('wpgw.dev.internal');
  });

  it('renews the leaf when it is close to expiry', async () => {
    const dir = await tempDir();
    const { logger } = captureLogs();
    const t0 = new Date();
    const first = await startManagedTls({ store: dirCertStore(dir), identity, logger, now: () => t0 });
    first.close();
    const later = new Date(t0.getTime() + DEFAULT_ROTATION_POLICY.leafValidityMs * 0.8);
    const second = await startManagedTls({ store: dirCertStore(dir), identity, logger, now: () => later });
    second.close();
    expect(second.caBundle()).toBe(first.caBundle());
    expect(new X509Certificate(second.current().cert).validToDate.getTime()).toBeGreaterThan(
      new X509Certificate(first.current().cert).validToDate.getTime(),
    );
  });

  it('replaces unreadable files with a fresh CA + leaf', async () => {
    const dir = await tempDir();
    const { logger } = captureLogs();
    const first = await startManagedTls({ store: dirCertStore(dir), identity, logger });
    first.close();
    await writeFile(join(dir, 'ca.key'), 'garbage');
    const second = await startManagedTls({ store: dirCertStore(dir), identity, logger });
    second.close();
    expect(second.caBundle()).not.toBe(first.caBundle());
    const leaf = new X509Certificate(second.current().cert);
    expect(isIssuedBy(leaf, new X509Certificate(second.caBundle()))).toBe(true);
  });
});
