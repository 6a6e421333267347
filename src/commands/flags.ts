// Flag validation shared by every command: a usage error is reported the same way (one line,
// exit 2) whichever command or flag it concerns, and before anything starts.
import { isIP } from 'node:net';
import { accessSync, constants } from 'node:fs';
import { parseArgs, type ParseArgsOptionsConfig } from 'node:util';
import { CidrError, parseCidr } from '../core/cidr.js';
import { isIstioRevision } from '../core/desired/gateway.js';
import { parseDuration } from './duration.js';

/** Exit code of every usage error (bad flag, bad value, missing argument). */
export const USAGE_EXIT = 2;

export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** A usage error of ours, or one node:util parseArgs threw for an unknown or malformed option. */
export function isUsageError(err: unknown): err is Error {
  if (err instanceof UsageError) return true;
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS_');
}

const HELP_OPTION = { help: { type: 'boolean', short: 'h' } } as const;

/**
 * Every command's arguments, parsed one way: strict (an unknown or malformed option is a usage
 * error), positionals only where the command takes them, and -h/--help, which prints the
 * command's help and ends it (undefined: exit 0) before any other check.
 */
export function parseCommand<const O extends ParseArgsOptionsConfig, const P extends boolean = false>(
  args: string[],
  io: { stdout: (text: string) => void },
  help: string | (() => string),
  options: O,
  allowPositionals?: P,
) {
  const parsed = parseArgs({
    args,
    strict: true,
    allowPositionals: (allowPositionals ?? false) as P,
    options: { ...options, ...HELP_OPTION },
  });
  if ((parsed.values as { help?: boolean }).help) {
    io.stdout(typeof help === 'string' ? help : help());
    return undefined;
  }
  return parsed;
}

export function intFlag(flag: string, text: string | undefined, fallback: number, min: number, max: number): number {
  if (text === undefined) return fallback;
  const n = Number(text);
  if (!/^\d+$/.test(text) || !Number.isInteger(n) || n < min || n > max) {
    throw new UsageError(`--${flag} must be a whole number from ${min} to ${max}, got "${text}"`);
  }
  return n;
}

/** --metrics-port: absent = no plain-HTTP metrics port; 0 = any free port (tests). */
export function metricsPortFlag(text: string | undefined): number | undefined {
  return text === undefined ? undefined : intFlag('metrics-port', text, 0, 0, 65535);
}

export function ipFlag(flag: string, text: string | undefined): string | undefined {
  if (text === undefined) return undefined;
  if (isIP(text) === 0) throw new UsageError(`--${flag} must be an IP address, got "${text}"`);
  return text;
}

export function revisionFlag(flag: string, text: string | undefined): string | undefined {
  if (text === undefined) return undefined;
  if (!isIstioRevision(text))
    throw new UsageError(
      `--${flag} must be an Istio revision or tag name (a DNS label such as asm-1-26), got "${text}"`,
    );
  return text;
}

/** A comma-separated list of CIDRs (or addresses), each checked; canonical text out. */
export function cidrListFlag(flag: string, text: string | undefined): string[] {
  if (text === undefined) return [];
  return text
    .split(',')
    .map((t) => t.trim())
    .filter(Boolean)
    .map((t) => {
      try {
        return parseCidr(t).text;
      } catch (err) {
        throw new UsageError(`--${flag}: ${err instanceof CidrError ? err.message : String(err)}`);
      }
    });
}

/** `--flag=true|false` (a bare boolean option could not be turned off from a chart value). */
export function booleanFlag(flag: string, text: string | undefined, fallback: boolean): boolean {
  if (text === undefined) return fallback;
  if (text === 'true' || text === 'false') return text === 'true';
  throw new UsageError(`--${flag} must be true or false, got "${text}"`);
}

/** A Kubernetes namespace name (a DNS label). */
export function namespaceFlag(flag: string, text: string | undefined): string | undefined {
  if (text === undefined) return undefined;
  if (!/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/.test(text))
    throw new UsageError(`--${flag} must be a namespace name (a DNS label), got "${text}"`);
  return text;
}

export function durationFlag(flag: string, text: string | undefined, fallback: string): number {
  try {
    return parseDuration(text ?? fallback);
  } catch (err) {
    throw new UsageError(`--${flag}: ${(err as Error).message}`);
  }
}

/** Fails now, naming the flag, instead of when a listener or reloader first reads the file. */
export function readableFileFlag(flag: string, path: string | undefined): string | undefined {
  if (path === undefined) return undefined;
  try {
    accessSync(path, constants.R_OK);
  } catch (err) {
    const code = (err as { code?: string }).code;
    throw new UsageError(
      `--${flag} ${path}: ${code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : (err as Error).message}`,
    );
  }
  return path;
}

/** Both or neither: half a certificate pair is a usage error. */
export function certPairFlags(
  certFlag: string,
  cert: string | undefined,
  keyFlag: string,
  key: string | undefined,
): { certFile?: string; keyFile?: string } {
  if (Boolean(cert) !== Boolean(key)) throw new UsageError(`--${certFlag} and --${keyFlag} go together`);
  if (!cert || !key) return {};
  return { certFile: readableFileFlag(certFlag, cert)!, keyFile: readableFileFlag(keyFlag, key)! };
}

export type OutputFormat = 'text' | 'json' | 'yaml';

/** -o: one of `allowed`, default the first. */
export function outputFlag<T extends OutputFormat>(text: string | undefined, allowed: readonly T[]): T {
  if (text === undefined) return allowed[0]!;
  if (!(allowed as readonly string[]).includes(text))
    throw new UsageError(`-o must be one of ${allowed.join(', ')}, got "${text}"`);
  return text as T;
}
