// `wpgw check-inject POD -n NS | -f FILE [-n NS]`: for one pod, every admission decision wpgw's
// and Istio's webhooks would make, like `istioctl x check-inject`: which pod webhooks the API
// server would call (their namespace and object selectors against the live namespace's and the
// pod's labels, in the order it calls them), then a server-side dry run of the pod through the
// real admission chain and what came back (wpgw's routing, Istio's injection, or the denial).
import { readFileSync } from 'node:fs';
import type { V1MutatingWebhookConfiguration, V1Namespace, V1Pod } from '@kubernetes/client-node';
import { parse } from 'yaml';
import { errorMessage } from '../cluster/client.js';
import { RawKubeClient, checkApiServer, loadKubeConfig, podTemplateOf } from '../cluster/index.js';
import { coversPodCreate, unmetRequirement } from '../core/label-selector.js';
import { MANAGED_LABEL, POD_STATUS_ANNOTATION } from '../names.js';
import { parseCommand, UsageError } from './flags.js';
import type { CliIO } from './main.js';

const HELP = `Usage: wpgw check-inject POD -n NAMESPACE | -f FILE [-n NAMESPACE]
  Explains, for one pod, which mutating webhooks the API server calls for it (and why the others
  are not), then admits it in a server-side dry run (nothing is created) and shows what wpgw and
  Istio did to it. FILE holds a Pod or a workload (its pod template is used).
  -n, --namespace NS   the pod's namespace (default: the file's, else "default")
  -f, --filename F     read the pod from a YAML or JSON file instead of the cluster
Exit: 0 admitted, 1 denied or failed, 2 usage.
`;

type WorkloadLike = Parameters<typeof podTemplateOf>[0];

const OWNER_PATHS: Record<string, (ns: string) => string> = {
  ReplicaSet: (ns) => `/apis/apps/v1/namespaces/${ns}/replicasets`,
  StatefulSet: (ns) => `/apis/apps/v1/namespaces/${ns}/statefulsets`,
  DaemonSet: (ns) => `/apis/apps/v1/namespaces/${ns}/daemonsets`,
  Job: (ns) => `/apis/batch/v1/namespaces/${ns}/jobs`,
};

/** The pod to explain: the live pod (as its creator sent it, without status) or the file's. */
function podFromFile(file: string): V1Pod {
  let doc: any;
  try {
    doc = parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new UsageError(`-f ${file}: ${(err as Error).message}`);
  }
  if (doc?.kind === 'Pod') return doc as V1Pod;
  const template = doc && typeof doc === 'object' ? podTemplateOf(doc) : undefined;
  if (!template)
    throw new UsageError(`-f ${file}: neither a Pod nor a workload with a pod template (kind ${doc?.kind ?? 'none'})`);
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { ...template.metadata, name: `${doc.metadata?.name ?? 'pod'}-probe` },
    spec: template.spec!,
  };
}

function forDryRun(pod: V1Pod, namespace: string): V1Pod {
  const { name, generateName, labels, annotations } = pod.metadata ?? {};
  const spec = { ...pod.spec! };
  delete spec.nodeName;
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { generateName: generateName ?? `${name ?? 'pod'}-`, namespace, labels, annotations },
    spec,
  };
}

export async function checkInjectCommand(args: string[], io: CliIO): Promise<number> {
  const parsed = parseCommand(
    args,
    io,
    HELP,
    { namespace: { type: 'string', short: 'n' }, filename: { type: 'string', short: 'f' } },
    true,
  );
  if (!parsed) return 0;
  const { values, positionals } = parsed;
  if (Boolean(values.filename) === positionals.length > 0) throw new UsageError('give a POD name or -f FILE');
  if (positionals.length > 1) throw new UsageError(`one pod at a time, got ${positionals.join(' ')}`);
  const filePod = values.filename ? podFromFile(values.filename) : undefined;
  const kc = loadKubeConfig();
  await checkApiServer(kc, { timeoutMs: 5_000 });
  const rest = new RawKubeClient(kc);
  const namespace = values.namespace ?? filePod?.metadata?.namespace ?? 'default';
  const live = filePod
    ? undefined
    : await rest.request<V1Pod>('GET', `/api/v1/namespaces/${namespace}/pods/${positionals[0]}`);
  // A live pod is already mutated: admit its owner's template instead, which is what the next pod
  // of that owner is created from (a bare pod is admitted as it is now).
  const owner = live?.metadata?.ownerReferences?.find((o) => o.controller && OWNER_PATHS[o.kind]);
  const template = owner
    ? podTemplateOf(await rest.request<WorkloadLike>('GET', `${OWNER_PATHS[owner.kind]!(namespace)}/${owner.name}`))
    : undefined;
  const pod: V1Pod =
    filePod ??
    (template
      ? {
          apiVersion: 'v1',
          kind: 'Pod',
          metadata: { ...template.metadata, name: live!.metadata!.name! },
          spec: template.spec!,
        }
      : live!);
  const ns = await rest.request<V1Namespace>('GET', `/api/v1/namespaces/${namespace}`);
  const nsLabels = ns.metadata?.labels ?? {};
  const podLabels = pod.metadata?.labels ?? {};
  const source = filePod
    ? `from ${values.filename}`
    : owner
      ? `live; admitted from its ${owner.kind} ${owner.name}'s template`
      : 'live; admitted as it is now';
  const lines = [
    `Pod ${namespace}/${pod.metadata?.name ?? pod.metadata?.generateName ?? ''} (${source})`,
    '',
    'Mutating webhooks for Pod CREATE, in the order the API server calls them:',
  ];

  const configs = (
    (
      await rest.request<{ items?: V1MutatingWebhookConfiguration[] }>(
        'GET',
        '/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations',
      )
    ).items ?? []
  ).sort((a, b) => (a.metadata?.name ?? '').localeCompare(b.metadata?.name ?? ''));
  let any = false;
  for (const c of configs) {
    for (const w of c.webhooks ?? []) {
      if (!coversPodCreate(w.rules)) continue;
      any = true;
      const nsWhy = unmetRequirement(w.namespaceSelector as never, nsLabels);
      const podWhy = nsWhy ? undefined : unmetRequirement(w.objectSelector as never, podLabels);
      const where = `${c.metadata?.name} / ${w.name}`;
      lines.push(
        nsWhy
          ? `  ✖ ${where}: not called: namespace ${nsWhy}`
          : podWhy
            ? `  ✖ ${where}: not called: pod label ${podWhy}`
            : `  ✔ ${where}: called (failurePolicy ${w.failurePolicy ?? 'Fail'})`,
      );
    }
  }
  if (!any) lines.push('  none');

  lines.push('', 'Server-side dry run (nothing is created):');
  let code = 0;
  try {
    const out = await rest.request<V1Pod>('POST', `/api/v1/namespaces/${namespace}/pods`, {
      query: { dryRun: 'All' },
      body: forDryRun(pod, namespace),
    });
    const status = out.metadata?.annotations?.[POD_STATUS_ANNOTATION];
    if (out.metadata?.labels?.[MANAGED_LABEL] === 'true' && status) {
      const aliases = (out.spec?.hostAliases ?? []).map((h) => `${h.ip} ${(h.hostnames ?? []).join(' ')}`);
      lines.push(
        `  wpgw: managed; ${aliases.length ? `hostAliases ${aliases.join('; ')}` : `dnsConfig ${(out.spec?.dnsConfig?.nameservers ?? []).join(', ')}`}`,
        `        ${POD_STATUS_ANNOTATION}: ${status}`,
      );
    } else {
      lines.push('  wpgw: left alone (not managed)');
    }
    const istio = out.metadata?.annotations?.['sidecar.istio.io/status'];
    const proxy =
      out.spec?.containers?.find((c) => c.name === 'istio-proxy') ??
      out.spec?.initContainers?.find((c) => c.name === 'istio-proxy');
    lines.push(
      istio || proxy
        ? `  Istio: injected${proxy ? ` (${proxy.image})` : ''}`
        : `  Istio: not injected${out.metadata?.labels?.['sidecar.istio.io/inject'] === 'false' ? ' (sidecar.istio.io/inject=false)' : ''}`,
    );
  } catch (err) {
    lines.push(`  denied: ${errorMessage(err)}`);
    code = 1;
  }
  io.stdout(`${lines.join('\n')}\n`);
  return code;
}
