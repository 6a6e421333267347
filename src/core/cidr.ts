// CIDR arithmetic for the gateway's egress limits: parse, contain. Pure, IPv4 and IPv6.
import { isIP } from 'node:net';

export interface Cidr {
  family: 4 | 6;
  /** The network address as a number of 32 or 128 bits (host bits cleared). */
  base: bigint;
  prefix: number;
  /** Canonical text, e.g. "10.0.0.0/8", "fd00:ec2::254/128". */
  text: string;
}

export class CidrError extends Error {}

/** "10.1.2.3/8" -> 10.0.0.0/8; a bare address is a /32 or /128. Throws CidrError naming the text. */
export function parseCidr(text: string): Cidr {
  const [addr = '', prefixText, extra] = text.trim().split('/');
  const family = isIP(addr);
  if (family === 0 || extra !== undefined) throw new CidrError(`"${text}" is not an IP address or CIDR`);
  const bits = family === 4 ? 32 : 128;
  const prefix = prefixText === undefined ? bits : /^\d{1,3}$/.test(prefixText) ? Number(prefixText) : NaN;
  if (!Number.isInteger(prefix) || prefix < 0 || prefix > bits)
    throw new CidrError(`"${text}": the prefix length must be 0-${bits}`);
  const value = family === 4 ? v4ToBigInt(addr) : v6ToBigInt(addr);
  // The API server refuses IPv4-mapped IPv6 in NetworkPolicies; the IPv4 form says the same.
  if (family === 6 && value >> 32n === 0xffffn)
    throw new CidrError(`"${text}" is an IPv4-mapped IPv6 address: write it as IPv4`);
  const base = prefix === 0 ? 0n : (value >> BigInt(bits - prefix)) << BigInt(bits - prefix);
  return {
    family: family as 4 | 6,
    base,
    prefix,
    text: `${family === 4 ? bigIntToV4(base) : bigIntToV6(base)}/${prefix}`,
  };
}

/** Does `outer` contain all of `inner` (equal counts)? */
export function contains(outer: Cidr, inner: Cidr): boolean {
  if (outer.family !== inner.family || outer.prefix > inner.prefix) return false;
  const bits = outer.family === 4 ? 32 : 128;
  return inner.base >> BigInt(bits - outer.prefix) === outer.base >> BigInt(bits - outer.prefix);
}

/** Orders by family, then address, then prefix (stable lists: no churn writes). */
export function compareCidr(a: Cidr, b: Cidr): number {
  return a.family - b.family || (a.base < b.base ? -1 : a.base > b.base ? 1 : a.prefix - b.prefix);
}

/**
 * A resolved address as a /32 or /128; IPv4-mapped IPv6 (::ffff:a.b.c.d, ::ffff:a9fe:a9fe) as the
 * IPv4 address it reaches, so a DNS answer cannot dress a forbidden IPv4 address up as IPv6.
 */
export function addressCidr(ip: string): Cidr {
  if (isIP(ip) === 6) {
    const value = v6ToBigInt(ip);
    if (value >> 32n === 0xffffn) return parseCidr(bigIntToV4(value & 0xffffffffn));
  }
  return parseCidr(ip);
}

function v4ToBigInt(addr: string): bigint {
  return addr.split('.').reduce((acc, part) => (acc << 8n) | BigInt(Number(part)), 0n);
}

function bigIntToV4(n: bigint): string {
  return [24n, 16n, 8n, 0n].map((s) => String((n >> s) & 255n)).join('.');
}

function v6ToBigInt(addr: string): bigint {
  let text = addr.toLowerCase();
  // A trailing dotted IPv4 (::ffff:1.2.3.4) becomes two hex groups.
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4) {
    const n = v4ToBigInt(v4[1]!);
    text = `${text.slice(0, -v4[1]!.length)}${(n >> 16n).toString(16)}:${(n & 0xffffn).toString(16)}`;
  }
  const [head = '', tail] = text.split('::');
  const headGroups = head ? head.split(':') : [];
  const tailGroups = tail ? tail.split(':') : [];
  const groups =
    tail === undefined
      ? headGroups
      : [...headGroups, ...Array<string>(8 - headGroups.length - tailGroups.length).fill('0'), ...tailGroups];
  return groups.reduce((acc, g) => (acc << 16n) | BigInt(parseInt(g, 16)), 0n);
}

/** RFC 5952 text: lowercase, the longest run of zero groups (2+) as "::". */
function bigIntToV6(n: bigint): string {
  const groups = Array.from({ length: 8 }, (_, i) => Number((n >> BigInt(112 - 16 * i)) & 0xffffn));
  let best = { start: -1, len: 0 };
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > best.len && j - i >= 2) best = { start: i, len: j - i };
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (best.start < 0) return hex.join(':');
  return `${hex.slice(0, best.start).join(':')}::${hex.slice(best.start + best.len).join(':')}`;
}
