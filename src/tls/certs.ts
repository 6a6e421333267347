// X.509 generation and inspection for the webhook's serving certificates.
//
// Generation uses selfsigned 5.x, which can sign a leaf with a provided CA (`opts.ca`), so no
// second crypto library (node-forge) is needed. Inspection uses node:crypto's X509Certificate.
//
// Two selfsigned constraints shape this module:
// - the CA key is imported with the *leaf's* key type, so CA and leaf must share a key type:
//   the leaf always takes the CA key's type;
// - it writes no subject/authority key identifiers, so verifiers pick an issuer by subject name.
//   Every CA therefore gets a unique subject (a timestamp in the CN, as client-go's self-signed
//   certs do); two same-named CAs in one bundle during rotation could make OpenSSL try the wrong one.

import { X509Certificate, createPrivateKey } from 'node:crypto';
import { isIP } from 'node:net';
import { generate } from 'selfsigned';

export type KeyType = 'ec' | 'rsa';

/** A certificate and its private key, PEM encoded. */
export interface CertKeyPem {
  cert: string;
  key: string;
}

/** The names a serving certificate must carry. */
export interface CertIdentity {
  dnsNames: string[];
  ipAddresses: string[];
}

/** Certificates start this long before "now" so small clock skew between hosts is tolerated. */
export const BACKDATE_MS = 5 * 60_000;

const SIGNATURE_HASH = 'sha256';

export interface GenerateCaOptions {
  now: Date;
  validityMs: number;
  /** EC P-256 by default: fast to generate, accepted by the API server (Go crypto/x509). */
  keyType?: KeyType;
  commonNamePrefix?: string;
}

export async function generateCa(opts: GenerateCaOptions): Promise<CertKeyPem> {
  const keyType = opts.keyType ?? 'ec';
  const cn = `${opts.commonNamePrefix ?? 'wpgw-ca'}-${Math.floor(opts.now.getTime() / 1000)}`;
  const pems = await generate(
    [
      { name: 'commonName', value: cn },
      { name: 'organizationName', value: 'wpgw' },
    ],
    {
      keyType,
      ...(keyType === 'rsa' ? { keySize: 2048 } : { curve: 'P-256' as const }),
      algorithm: SIGNATURE_HASH,
      notBeforeDate: new Date(opts.now.getTime() - BACKDATE_MS),
      notAfterDate: new Date(opts.now.getTime() + opts.validityMs),
      extensions: [
        { name: 'basicConstraints', cA: true, pathLenConstraint: 0, critical: true },
        { name: 'keyUsage', keyCertSign: true, cRLSign: true, digitalSignature: true, critical: true },
      ],
    },
  );
  return { cert: pems.cert, key: pems.private };
}

export interface GenerateLeafOptions {
  ca: CertKeyPem;
  identity: CertIdentity;
  now: Date;
  validityMs: number;
}

/** A serving certificate signed by `ca`; it never outlives the CA. */
export async function generateLeaf(opts: GenerateLeafOptions): Promise<CertKeyPem> {
  const { dnsNames, ipAddresses } = opts.identity;
  if (dnsNames.length === 0 && ipAddresses.length === 0) {
    throw new Error('a serving certificate needs at least one DNS or IP SAN');
  }
  const caCert = new X509Certificate(opts.ca.cert);
  const keyType = keyTypeOf(opts.ca.key);
  const notAfter = Math.min(opts.now.getTime() + opts.validityMs, caCert.validToDate.getTime());
  const pems = await generate([{ name: 'commonName', value: dnsNames[0] ?? ipAddresses[0] ?? 'wpgw' }], {
    keyType,
    ...(keyType === 'rsa' ? { keySize: 2048 } : { curve: 'P-256' as const }),
    algorithm: SIGNATURE_HASH,
    notBeforeDate: new Date(opts.now.getTime() - BACKDATE_MS),
    notAfterDate: new Date(notAfter),
    ca: { cert: opts.ca.cert, key: opts.ca.key },
    extensions: [
      { name: 'basicConstraints', cA: false, critical: true },
      // keyEncipherment only means something for RSA key exchange.
      { name: 'keyUsage', digitalSignature: true, keyEncipherment: keyType === 'rsa', critical: true },
      { name: 'extKeyUsage', serverAuth: true },
      {
        name: 'subjectAltName',
        altNames: [
          ...dnsNames.map((value) => ({ type: 2 as const, value })),
          ...ipAddresses.map((ip) => ({ type: 7 as const, ip })),
        ],
      },
    ],
  });
  return { cert: pems.cert, key: pems.private };
}

/** The DNS names the API server may use for Service `<service>` in `<namespace>`. */
export function serviceDnsNames(service: string, namespace: string, clusterDomain = 'cluster.local'): string[] {
  return [
    service,
    `${service}.${namespace}`,
    `${service}.${namespace}.svc`,
    `${service}.${namespace}.svc.${clusterDomain}`,
  ];
}

/** Service names plus extra names; entries that parse as IP addresses become IP SANs. */
export function webhookIdentity(opts: {
  service: string;
  namespace: string;
  clusterDomain?: string;
  extraNames?: string[];
}): CertIdentity {
  const dnsNames = serviceDnsNames(opts.service, opts.namespace, opts.clusterDomain);
  const ipAddresses: string[] = [];
  for (const name of opts.extraNames ?? []) {
    if (isIP(name) !== 0) ipAddresses.push(name);
    else dnsNames.push(name);
  }
  return { dnsNames: dedupe(dnsNames), ipAddresses: dedupe(ipAddresses) };
}

const PEM_CERT_RE = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/** The PEM certificate blocks of a bundle, each ending with a newline. */
export function splitPemBundle(bundle: string): string[] {
  return (bundle.match(PEM_CERT_RE) ?? []).map((block) => `${block}\n`);
}

export function joinPemBundle(certs: string[]): string {
  return certs.map((c) => (c.endsWith('\n') ? c : `${c}\n`)).join('');
}

export function keyTypeOf(keyPem: string): KeyType {
  const type = createPrivateKey(keyPem).asymmetricKeyType;
  if (type === 'ec' || type === 'rsa') return type;
  throw new Error(`unsupported key type ${String(type)}`);
}

/** True if `key` is the private key of `cert`; false for unparsable keys. */
export function keyMatches(cert: X509Certificate, keyPem: string): boolean {
  try {
    return cert.checkPrivateKey(createPrivateKey(keyPem));
  } catch {
    return false;
  }
}

/** True if `ca` is a CA certificate whose key signed `cert`. */
export function isIssuedBy(cert: X509Certificate, ca: X509Certificate): boolean {
  return ca.ca && cert.checkIssued(ca) && cert.verify(ca.publicKey);
}

/** When a certificate was issued (its notBefore without the backdate). */
export function issuedAt(cert: X509Certificate): number {
  return cert.validFromDate.getTime() + BACKDATE_MS;
}

/** Fraction of the certificate's lifetime still ahead at `now` (<= 0 when expired). */
export function lifetimeLeft(cert: X509Certificate, now: Date): number {
  const from = cert.validFromDate.getTime();
  const to = cert.validToDate.getTime();
  return (to - now.getTime()) / (to - from);
}

export function isExpired(cert: X509Certificate, now: Date): boolean {
  return now.getTime() >= cert.validToDate.getTime();
}

/** The SANs of a certificate, split into DNS names and IP addresses (IPv6 in Node's expanded form). */
export function sansOf(cert: X509Certificate): CertIdentity {
  const dnsNames: string[] = [];
  const ipAddresses: string[] = [];
  for (const entry of (cert.subjectAltName ?? '').split(', ')) {
    if (entry.startsWith('DNS:')) dnsNames.push(entry.slice(4));
    else if (entry.startsWith('IP Address:')) ipAddresses.push(entry.slice(11));
  }
  return { dnsNames, ipAddresses };
}

/** True if the certificate carries exactly the identity's names (order-insensitive). */
export function coversExactly(cert: X509Certificate, identity: CertIdentity): boolean {
  const sans = sansOf(cert);
  return (
    sameSet(sans.dnsNames, identity.dnsNames) &&
    sameSet(sans.ipAddresses.map(normalizeIp), identity.ipAddresses.map(normalizeIp))
  );
}

/** Node prints IPv6 SANs fully expanded; compare through a canonical form. */
function normalizeIp(ip: string): string {
  if (isIP(ip) !== 6) return ip;
  return new URL(`http://[${ip}]/`).hostname;
}

function sameSet(a: string[], b: string[]): boolean {
  const sa = new Set(a);
  const sb = new Set(b);
  return sa.size === sb.size && [...sa].every((x) => sb.has(x));
}

function dedupe(xs: string[]): string[] {
  return [...new Set(xs)];
}
