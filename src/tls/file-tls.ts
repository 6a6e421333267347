// --tls-cert-file / --tls-key-file with hot reload. Like cert-manager's file source we poll
// (default every 10 s) instead of fs.watch: Secret volumes swap a symlink, which watchers miss.
// We compare contents, not mtimes, so the atomic ..data swap and plain rewrites both count.
// A pair that does not validate (half-written, mismatched) keeps the old one and logs an error.

import { readFile } from 'node:fs/promises';
import type { Logger } from 'pino';
import { type TlsMaterial, type TlsSource, TlsListeners, validateTlsMaterial } from './tls.js';

export interface FileTlsOptions {
  certFile: string;
  keyFile: string;
  intervalMs?: number;
  logger: Logger;
}

export interface FileTlsSource extends TlsSource {
  /** Check the files now (the timer calls this); resolves once handled. */
  poll(): Promise<void>;
}

/** Reads and validates the pair once (throws if unusable), then polls for changes. */
export async function createFileTlsSource(opts: FileTlsOptions): Promise<FileTlsSource> {
  const log = opts.logger.child({ component: 'tls-files' });
  const readPair = async (): Promise<TlsMaterial> => ({
    cert: await readFile(opts.certFile, 'utf8'),
    key: await readFile(opts.keyFile, 'utf8'),
  });

  let current = await readPair();
  validateTlsMaterial(current);
  let lastRejected: string | undefined; // log each bad content once, not every poll
  const listeners = new TlsListeners();
  let polling = false;

  const poll = async (): Promise<void> => {
    if (polling) return;
    polling = true;
    try {
      const next = await readPair();
      if (next.cert === current.cert && next.key === current.key) return;
      const fingerprint = next.cert + next.key;
      try {
        validateTlsMaterial(next);
      } catch (err) {
        if (lastRejected !== fingerprint) {
          log.error(
            { err, certFile: opts.certFile, keyFile: opts.keyFile },
            'new TLS files rejected; keeping the current certificate',
          );
        }
        lastRejected = fingerprint;
        return;
      }
      current = next;
      lastRejected = undefined;
      log.info({ certFile: opts.certFile }, 'TLS certificate reloaded from files');
      listeners.emit(current);
    } catch (err) {
      log.error({ err }, 'reading TLS files failed; keeping the current certificate');
    } finally {
      polling = false;
    }
  };

  const timer = setInterval(() => void poll(), opts.intervalMs ?? 10_000);
  timer.unref();

  return {
    current: () => current,
    onChange: (l) => listeners.add(l),
    poll,
    close() {
      clearInterval(timer);
      listeners.clear();
    },
  };
}
