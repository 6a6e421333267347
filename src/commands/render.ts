// `wpgw render`: the offline preview. Reads manifests, prints them as the webhook would admit
// them plus everything the controller would create; what it decided goes to stderr.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { PLACEHOLDER_GATEWAY_IP } from '../defaults.js';
import { render } from '../render.js';
import { ipFlag, namespaceFlag, outputFlag, parseCommand, revisionFlag, UsageError } from './flags.js';
import type { CliIO } from './main.js';

const HELP = () => `Usage: wpgw render -f FILE|DIR|- [-f ...] [options]
Reads multi-document YAML (or JSON); prints every object as the webhook would admit it, then every
object the controller creates for those namespaces (each namespace in the input counts as opted in).
What it did goes to stderr.
  -f, --file F             a file, a directory (its *.yaml, *.yml and *.json files, sorted) or - for
                           standard input; repeat for several
  --gateway-ip IP          the gateway address to inject (default ${PLACEHOLDER_GATEWAY_IP}, a documentation address)
  --dns-ip IP              the wpgw-dns address for dnsConfig mode (default: a placeholder)
  --cluster-dns-ip IP      the cluster DNS Service address wpgw-dns forwards to
  -n, --namespace NS       namespace for objects that name none (default "default")
  --cluster-domain D       (default cluster.local)
  --istio-revision REV     the controller's --istio-revision (gateway pods get istio.io/rev=REV)
  --istio-root-namespace NS  Istio's root namespace: its policies in the input are mesh-wide (default istio-system)
  -o, --output F           yaml (default: a multi-document stream) or json (one v1 List)
  -q, --quiet              no report on stderr
`;

const MANIFEST_FILE = /\.(ya?ml|json)$/i;

export function renderCommand(args: string[], io: CliIO): number {
  const parsed = parseCommand(args, io, HELP, {
    file: { type: 'string', short: 'f', multiple: true },
    'gateway-ip': { type: 'string' },
    'dns-ip': { type: 'string' },
    'cluster-dns-ip': { type: 'string' },
    namespace: { type: 'string', short: 'n' },
    'cluster-domain': { type: 'string' },
    'istio-revision': { type: 'string' },
    'istio-root-namespace': { type: 'string' },
    output: { type: 'string', short: 'o' },
    quiet: { type: 'boolean', short: 'q' },
  });
  if (!parsed) return 0;
  const { values } = parsed;
  if (!values.file || values.file.length === 0) throw new UsageError('-f FILE|DIR|- is required');
  const output = outputFlag(values.output, ['yaml', 'json'] as const);
  const gatewayIP = ipFlag('gateway-ip', values['gateway-ip']);
  const dnsIP = ipFlag('dns-ip', values['dns-ip']);
  const clusterDnsIP = ipFlag('cluster-dns-ip', values['cluster-dns-ip']);
  const istioRevision = revisionFlag('istio-revision', values['istio-revision']);
  const text = values.file.map(readInput).join('\n---\n');
  const result = render(text, {
    ...(gatewayIP ? { gatewayIP } : {}),
    ...(dnsIP ? { dnsIP } : {}),
    ...(clusterDnsIP ? { clusterDnsIP } : {}),
    ...(values.namespace ? { defaultNamespace: values.namespace } : {}),
    ...(values['cluster-domain'] ? { clusterDomain: values['cluster-domain'] } : {}),
    ...(istioRevision ? { istioRevision } : {}),
    ...(values['istio-root-namespace']
      ? { istioRootNamespace: namespaceFlag('istio-root-namespace', values['istio-root-namespace']) }
      : {}),
  });
  // The report first, also when something was denied: one denial must not hide the rest.
  if (!values.quiet) for (const line of result.report) io.stderr(`# ${line}\n`);
  if (result.errors.length > 0) {
    for (const e of result.errors) io.stderr(`error: ${e}\n`);
    return 1;
  }
  io.stdout(
    output === 'json'
      ? `${JSON.stringify({ apiVersion: 'v1', kind: 'List', items: result.objects }, null, 2)}\n`
      : result.yaml,
  );
  return 0;
}

function readInput(path: string): string {
  if (path === '-') return readFileSync(0, 'utf8');
  let isDir: boolean;
  try {
    isDir = statSync(path).isDirectory();
  } catch {
    // Not a usage error (the flag is right, the file is not there): exit 1, as kubectl does.
    throw new Error(`-f ${path}: no such file or directory`);
  }
  if (!isDir) return readFileSync(path, 'utf8');
  const files = readdirSync(path)
    .filter((f) => MANIFEST_FILE.test(f))
    .sort();
  if (files.length === 0) throw new Error(`-f ${path}: no *.yaml, *.yml or *.json files in this directory`);
  return files.map((f) => readFileSync(join(path, f), 'utf8')).join('\n---\n');
}
