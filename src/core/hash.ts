// FNV-1a (32 bit): a fast, stable, non-cryptographic hash for names and port probing starts. Not
// for anything an attacker may want to collide.

export function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

/** 8 hex digits of fnv1a, for object names shortened to fit. */
export function shortHash(text: string): string {
  return fnv1a(text).toString(16).padStart(8, '0');
}
