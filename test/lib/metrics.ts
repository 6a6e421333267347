// Reading wpgw's Prometheus endpoints in the e2e suite and the benchmarks.
import { getInsecure } from './cluster-stack.js';

/** Sum of a family's samples in Prometheus text output, over the label sets `filter` accepts. */
export function sumSamples(text: string, name: string, filter: (labels: string) => boolean = () => true): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    const m = new RegExp(`^${name}(\\{[^}]*\\})? ([0-9.e+-]+)$`).exec(line);
    if (m && filter(m[1] ?? '')) sum += Number(m[2]);
  }
  return sum;
}

/** A local wpgw process's /metrics text (its self-signed certificate is not checked). */
export async function scrape(port: number): Promise<string> {
  return (await getInsecure(`https://127.0.0.1:${port}/metrics`)).body;
}

/** sumSamples() of a local process's /metrics. */
export async function scrapeSum(port: number, name: string, filter?: (labels: string) => boolean): Promise<number> {
  return sumSamples(await scrape(port), name, filter);
}
