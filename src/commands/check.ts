// `wpgw check [--pre] [-n NS] [-o table|json] [--wait D]`: is the cluster ready for wpgw (--pre),
// and is wpgw working? Grouped checks printed with ✔ (ok), ‼ (warning) and ✖ (failure) and a hint
// under each one that is not ok, like `linkerd check`. Exit 1 when any check fails (warnings do
// not fail), 2 on usage errors. --wait re-runs until nothing fails or the time is up.
import { RawKubeClient, checkApiServer, loadKubeConfig } from '../cluster/index.js';
import { runChecks, type CheckResult } from '../cluster/checks.js';
import { collectStatus } from './status-report.js';
import { durationFlag, parseCommand, revisionFlag, UsageError } from './flags.js';
import type { CliIO } from './main.js';

const HELP = `Usage: wpgw check [--pre] [-n NAMESPACE | -A] [--wpgw-namespace NS] [-o table|json] [--wait D]
  Checks the cluster and wpgw, each check a real query (lists, access reviews, a server-side dry
  run of a Windows probe pod, the webhook's certificate against its caBundle).
      --pre                before installing: Kubernetes, nodes, your permissions, Istio
  -n, --namespace NS       the opted-in namespace to check and probe (default: every one)
  -A, --all-namespaces     every opted-in namespace (the default; as kubectl)
      --wpgw-namespace NS  where wpgw runs (default wpgw-system)
  -o, --output F           table (default) or json
      --wait D             re-run until no check fails, for at most D (e.g. 2m)
      --istio-revision REV the revision the controller gives gateway pods (default: the installed
                           controller's --istio-revision; with --pre: none), for the injection check
      --no-dry-run         skip the server-side dry runs of probe pods (no create on pods needed)
Exit: 0 no failure (warnings allowed), 1 a check failed, 2 usage.
`;

const SYMBOL = { ok: '✔', warn: '‼', fail: '✖' } as const;

export function formatChecks(results: CheckResult[]): string {
  const lines: string[] = [];
  let group: string | undefined;
  for (const r of results) {
    if (r.group !== group) {
      if (group !== undefined) lines.push('');
      group = r.group;
      lines.push(r.group, '-'.repeat(r.group.length));
    }
    lines.push(`${SYMBOL[r.status]} ${r.name}${r.detail ? `: ${r.detail}` : ''}`);
    if (r.status !== 'ok' && r.hint) lines.push(`    see: ${r.hint}`);
  }
  const failed = results.filter((r) => r.status === 'fail').length;
  const warned = results.filter((r) => r.status === 'warn').length;
  lines.push(
    '',
    failed
      ? `Status check results are ${SYMBOL.fail} (${failed} failed, ${warned} warning(s))`
      : `Status check results are ${SYMBOL.ok}${warned ? ` (${warned} warning(s))` : ''}`,
  );
  return `${lines.join('\n')}\n`;
}

export async function checkCommand(args: string[], io: CliIO): Promise<number> {
  const parsed = parseCommand(
    args,
    io,
    HELP,
    {
      pre: { type: 'boolean' },
      namespace: { type: 'string', short: 'n' },
      'all-namespaces': { type: 'boolean', short: 'A' },
      'wpgw-namespace': { type: 'string' },
      output: { type: 'string', short: 'o' },
      wait: { type: 'string' },
      'no-dry-run': { type: 'boolean' },
      'istio-revision': { type: 'string' },
    },
    true,
  );
  if (!parsed) return 0;
  const { values, positionals } = parsed;
  if (positionals.length > 0) throw new UsageError(`unexpected argument "${positionals[0]}"`);
  if (values.namespace && values['all-namespaces']) throw new UsageError('-n and -A go one at a time');
  const output = values.output ?? 'table';
  if (output !== 'table' && output !== 'json') throw new UsageError(`-o must be one of table, json, got "${output}"`);
  const istioRevision = revisionFlag('istio-revision', values['istio-revision']);
  const waitMs = values.wait === undefined ? 0 : durationFlag('wait', values.wait, '0s');
  const kubeconfig = loadKubeConfig();
  await checkApiServer(kubeconfig, { timeoutMs: 5_000 });
  const rest = new RawKubeClient(kubeconfig);
  const deadline = Date.now() + waitMs;
  for (;;) {
    const results = await runChecks({
      rest,
      wpgwNamespace: values['wpgw-namespace'] ?? 'wpgw-system',
      pre: Boolean(values.pre),
      noDryRun: Boolean(values['no-dry-run']),
      ...(istioRevision ? { istioRevision } : {}),
      ...(values.namespace ? { namespace: values.namespace } : {}),
      statusOf: async (namespace) => {
        const report = await collectStatus(kubeconfig, { namespace, rest });
        const s = report.namespaces[0];
        return { errors: report.errors, drift: s?.drift.length ?? 0, conflicts: s?.conflicts.length ?? 0 };
      },
    });
    const failed = results.some((r) => r.status === 'fail');
    if (failed && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, Math.min(5_000, Math.max(0, deadline - Date.now()))));
      continue;
    }
    io.stdout(
      output === 'json' ? `${JSON.stringify({ success: !failed, checks: results }, null, 2)}\n` : formatChecks(results),
    );
    return failed ? 1 : 0;
  }
}
