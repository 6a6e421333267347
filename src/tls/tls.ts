// What the HTTPS server needs from a certificate source: the current key pair and a way to hear
// about replacements. The server applies replacements with setSecureContext (no restart).

import { X509Certificate, createPrivateKey } from 'node:crypto';
import { createSecureContext } from 'node:tls';

/** A serving key pair, PEM encoded (`cert` may carry intermediates after the leaf). */
export interface TlsMaterial {
  cert: string;
  key: string;
}

export interface TlsSource {
  current(): TlsMaterial;
  /** Called with each new, already validated pair. Returns an unsubscribe function. */
  onChange(listener: (material: TlsMaterial) => void): () => void;
  close(): void;
}

/** Never negotiate below TLS 1.2 (the requirement; Node's default could be lowered by flags). */
export const TLS_MIN_VERSION = 'TLSv1.2' as const;

/** Throws (with a reason) unless the pair parses, matches and loads into an OpenSSL context. */
export function validateTlsMaterial(material: TlsMaterial): void {
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(material.cert);
  } catch (err) {
    throw new Error(`certificate does not parse: ${(err as Error).message}`);
  }
  let key;
  try {
    key = createPrivateKey(material.key);
  } catch (err) {
    throw new Error(`private key does not parse: ${(err as Error).message}`);
  }
  if (!cert.checkPrivateKey(key)) throw new Error('private key does not match the certificate');
  createSecureContext({ cert: material.cert, key: material.key, minVersion: TLS_MIN_VERSION });
}

/** A fixed pair (tests, or certificates the caller manages itself). */
export function staticTlsSource(material: TlsMaterial): TlsSource {
  validateTlsMaterial(material);
  return { current: () => material, onChange: () => () => {}, close: () => {} };
}

/** Listener bookkeeping shared by the changing sources. */
export class TlsListeners {
  readonly #listeners = new Set<(m: TlsMaterial) => void>();

  add(listener: (m: TlsMaterial) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  emit(material: TlsMaterial): void {
    for (const listener of this.#listeners) listener(material);
  }

  clear(): void {
    this.#listeners.clear();
  }
}
