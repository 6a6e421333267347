// `wpgw suggest [-n NS]`: per managed workload, the names its pods resolved through wpgw-dns that
// are neither declared nor covered by mesh-wide outbound, with the wpgw.io/outbound entry to paste.
// The query log is read with the caller's own credentials (pods/log on the wpgw-dns pods) and
// only printed here: nothing is stored or sent anywhere.
import { readFileSync } from 'node:fs';
import type { V1Namespace, V1Pod } from '@kubernetes/client-node';
import { checkApiServer, loadKubeConfig } from '../cluster/index.js';
import { RawKubeClient, errorMessage } from '../cluster/client.js';
import { collectionPath, kindInfo, objectPath } from '../cluster/kinds.js';
import { clusterServicesOnce, readNamespaceInput } from './status-report.js';
import { DEFAULT_DESIRED_OPTIONS } from '../defaults.js';
import { DNS_POD_LABEL } from '../names.js';
import { formatSuggestions, parseQueryLog, suggestEntries, type WorkloadSuggestions } from '../core/suggest.js';
import { NS_INJECT_ENABLED, NS_INJECT_LABEL } from '../names.js';
import { durationFlag, outputFlag, parseCommand, readableFileFlag, UsageError } from './flags.js';
import type { CliIO } from './main.js';

const HELP = `Usage: wpgw suggest [-n NAMESPACE] [--since 1h] [--dns-log FILE]... [-o text|json]
  -n, --namespace NS   one namespace (default: every opted-in namespace)
      --since D        how far back to read wpgw-dns's query log (default 1h)
      --dns-log FILE   read this wpgw-dns log (CoreDNS "log" lines, e.g. kubectl logs output) instead of
                       the pods' logs; repeatable. Needs -n.
  -o, --output F       text (default) or json
Reads the wpgw-dns pods' logs with your own credentials (pods/log); prints, stores and sends nothing else.
`;

interface List<T> {
  items?: T[];
}

export async function suggestCommand(args: string[], io: CliIO): Promise<number> {
  const parsed = parseCommand(args, io, HELP, {
    namespace: { type: 'string', short: 'n' },
    since: { type: 'string' },
    'dns-log': { type: 'string', multiple: true },
    output: { type: 'string', short: 'o' },
  });
  if (!parsed) return 0;
  const { values } = parsed;
  const output = outputFlag(values.output, ['text', 'json'] as const);
  const sinceSeconds = Math.ceil(durationFlag('since', values.since, '1h') / 1000);
  const files = (values['dns-log'] ?? []).map((f) => readableFileFlag('dns-log', f)!);
  if (files.length > 0 && !values.namespace)
    throw new UsageError("--dns-log needs -n NAMESPACE (the log of one namespace's wpgw-dns)");

  const kc = loadKubeConfig();
  await checkApiServer(kc, { timeoutMs: 5_000 });
  const rest = new RawKubeClient(kc);
  const nsInfo = kindInfo('v1', 'Namespace');
  const namespaces = values.namespace
    ? [await rest.request<V1Namespace>('GET', objectPath(nsInfo, undefined, values.namespace))]
    : ((
        await rest.request<List<V1Namespace>>('GET', collectionPath(nsInfo), {
          query: { labelSelector: `${NS_INJECT_LABEL}=${NS_INJECT_ENABLED}` },
        })
      ).items ?? []);
  const meshServices = clusterServicesOnce(rest);
  const report: Array<{ namespace: string; workloads: WorkloadSuggestions[] }> = [];
  const errors: string[] = [];
  for (const namespace of namespaces) {
    const ns = namespace.metadata?.name ?? '';
    try {
      const { input } = await readNamespaceInput(rest, namespace, undefined, meshServices);
      let logText: string;
      if (files.length > 0) logText = files.map((f) => readFileSync(f, 'utf8')).join('\n');
      else {
        const dnsPods =
          (
            await rest.request<List<V1Pod>>('GET', collectionPath(kindInfo('v1', 'Pod'), ns), {
              query: { labelSelector: `${DNS_POD_LABEL}=${ns}` },
            })
          ).items ?? [];
        if (dnsPods.length === 0)
          errors.push(`namespace ${ns}: no wpgw-dns pods (dnsConfig mode is off there), so no query log to read`);
        const logs = await Promise.all(
          dnsPods.map((p) =>
            rest
              .getText(`${objectPath(kindInfo('v1', 'Pod'), ns, p.metadata?.name ?? '')}/log`, {
                container: 'coredns',
                sinceSeconds,
              })
              .catch((err: unknown) => {
                errors.push(`namespace ${ns}: log of pod ${p.metadata?.name}: ${errorMessage(err)}`);
                return '';
              }),
          ),
        );
        logText = logs.join('\n');
      }
      report.push({
        namespace: ns,
        workloads: suggestEntries(input, parseQueryLog(logText), DEFAULT_DESIRED_OPTIONS.clusterDomain),
      });
    } catch (err) {
      errors.push(`namespace ${ns}: ${errorMessage(err)}`);
    }
  }
  if (output === 'json') io.stdout(`${JSON.stringify({ namespaces: report, errors }, null, 2)}\n`);
  else {
    io.stdout(report.map((r) => formatSuggestions(r.namespace, r.workloads)).join(''));
    for (const e of errors) io.stderr(`error: ${e}\n`);
  }
  return errors.length > 0 ? 1 : 0;
}
