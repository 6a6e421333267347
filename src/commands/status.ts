// `wpgw status [-n NS]`: per opted-in namespace, the gateway's address and readiness, the
// re-pointed Services, the declared destinations, and any drift or conflict.
import { checkApiServer, loadKubeConfig } from '../cluster/index.js';
import { collectStatus, formatStatus } from './status-report.js';
import { stringify } from 'yaml';
import { namespaceFlag, outputFlag, parseCommand, UsageError } from './flags.js';
import type { CliIO } from './main.js';

const HELP =
  "Usage: wpgw status [-n NAMESPACE | -A] [-o text|json|yaml]\n  -n, --namespace NS   one namespace (default: every opted-in namespace)\n  -A, --all-namespaces every opted-in namespace (the default; as kubectl)\n  -o, --output F       text (default), json or yaml\n  --istio-root-namespace NS  Istio's root namespace, whose policies are mesh-wide (default istio-system; the AKS add-on: aks-istio-system)\n";

export async function statusCommand(args: string[], io: CliIO): Promise<number> {
  const parsed = parseCommand(args, io, HELP, {
    namespace: { type: 'string', short: 'n' },
    'all-namespaces': { type: 'boolean', short: 'A' },
    output: { type: 'string', short: 'o' },
    'istio-root-namespace': { type: 'string' },
  });
  if (!parsed) return 0;
  const { values } = parsed;
  const output = outputFlag(values.output, ['text', 'json', 'yaml'] as const);
  if (values.namespace && values['all-namespaces']) throw new UsageError('-n and -A go one at a time');
  const kubeconfig = loadKubeConfig();
  // One quick look first: "cannot reach <server> (kubeconfig: ...)" beats a list of failed reads.
  await checkApiServer(kubeconfig, { timeoutMs: 5_000 });
  const root = namespaceFlag('istio-root-namespace', values['istio-root-namespace']);
  const report = await collectStatus(kubeconfig, {
    ...(values.namespace ? { namespace: values.namespace } : {}),
    ...(root ? { desired: { istioRootNamespace: root } } : {}),
  });
  io.stdout(
    output === 'json'
      ? `${JSON.stringify(report, null, 2)}\n`
      : output === 'yaml'
        ? stringify(report)
        : `${formatStatus(report)}\n`,
  );
  return report.errors.length > 0 ? 1 : 0;
}
