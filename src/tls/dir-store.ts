// Dev mode: keep the CA + leaf as files in a directory (default certs/, git-ignored) and reuse
// them across restarts while they are valid. File names match the Secret keys.

import { createHash } from 'node:crypto';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { CertStore, StoredCerts } from './cert-store.js';
import { CERT_KEYS, type CertData, type CertKey } from './rotation.js';

export function dirCertStore(dir: string): CertStore {
  const read = async (): Promise<StoredCerts | undefined> => {
    const data: Partial<CertData> = {};
    for (const key of CERT_KEYS) {
      try {
        data[key] = await readFile(join(dir, key), 'utf8');
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      }
    }
    if (Object.keys(data).length === 0) return undefined;
    return { data, version: versionOf(data) };
  };

  const write = async (data: CertData): Promise<void> => {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    for (const key of CERT_KEYS) {
      // tmp + rename: a reader never sees a half-written file.
      const tmp = join(dir, `.${key}.${process.pid}.tmp`);
      await writeFile(tmp, data[key], { mode: isPrivate(key) ? 0o600 : 0o644 });
      await rename(tmp, join(dir, key));
    }
  };

  return {
    description: `directory ${dir}`,
    read,
    async create(data) {
      if (await read()) return false;
      await write(data);
      return true;
    },
    async update(data, version) {
      const current = await read();
      if (current && current.version !== version) return false;
      await write(data);
      return true;
    },
  };
}

function isPrivate(key: CertKey): boolean {
  return key.endsWith('.key');
}

function versionOf(data: Partial<CertData>): string {
  const h = createHash('sha256');
  for (const key of CERT_KEYS) h.update(`${key}\0${data[key] ?? ''}\0`);
  return h.digest('hex');
}
