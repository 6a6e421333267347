// `wpgw restore [-n NS|--all] [--roll]`: hand namespaces back when the controller is gone. The
// same plan as the controller's opt-out (src/core/restore.ts), executed phase by phase with a
// fresh read of the cluster before each; what is already restored is skipped, so a second run
// does nothing. The gateway stays while pods still point at it: --roll restarts their owners
// and waits for them, otherwise they are listed and the run ends incomplete (exit 1).
import type { V1Namespace, V1Pod, V1Service } from '@kubernetes/client-node';
import {
  MERGE_PATCH_CONTENT_TYPE,
  RawKubeClient,
  errorMessage,
  errorStatus,
  type KubeRest,
} from '../cluster/client.js';
import { checkApiServer, loadKubeConfig } from '../cluster/index.js';
import { ROLLOUT_KIND, collectionPath, kindInfo, objectPath } from '../cluster/kinds.js';
import { isOptedIn } from '../cluster/objects.js';
import { planRestore, type RestorePlan } from '../core/restore.js';
import { listAllManaged } from './status-report.js';
import {
  RESTARTABLE_API_VERSIONS,
  isRestartable,
  ownerKey,
  resolveTopOwner,
  restartPatch,
  restartableObject,
  type OwnerLookup,
  type RestartableKind,
} from '../controller/owners.js';
import {
  FIELD_MANAGER,
  MANAGED_LABEL,
  SERVICE_ORIGINAL_ANNOTATION,
  NS_INJECT_LABEL,
  NS_INJECT_ENABLED,
} from '../names.js';
import { durationFlag, parseCommand, UsageError } from './flags.js';
import type { CliIO } from './main.js';

const HELP = `Usage: wpgw restore (-n NAMESPACE | --all) [--roll] [--timeout 10m]
  Hands namespaces back without the controller: restores re-pointed Services from
  wpgw.io/original, lists (or with --roll restarts) the owners of pods wpgw injected, and deletes
  what the controller made (app.kubernetes.io/managed-by=wpgw), the gateway last. Safe to re-run.
  The namespace must no longer be labelled wpgw.io/inject=enabled.
  -n, --namespace NS   one namespace
      --all            every namespace holding something of wpgw's
      --roll           rolling-restart the owners of injected pods and wait until they are replaced
      --timeout D      how long to wait for the gateway rollout and the pods (default 10m)
Exit: 0 restored, 1 incomplete (pods still point at the gateway) or failed, 2 usage.
`;

interface List<T> {
  items?: T[];
}

export async function restoreCommand(args: string[], io: CliIO): Promise<number> {
  const parsed = parseCommand(args, io, HELP, {
    namespace: { type: 'string', short: 'n' },
    all: { type: 'boolean' },
    roll: { type: 'boolean' },
    timeout: { type: 'string' },
  });
  if (!parsed) return 0;
  const { values } = parsed;
  if (Boolean(values.namespace) === Boolean(values.all))
    throw new UsageError('give exactly one of -n NAMESPACE and --all');
  const timeoutMs = durationFlag('timeout', values.timeout, '10m');
  const kc = loadKubeConfig();
  await checkApiServer(kc, { timeoutMs: 5_000 });
  const rest = new RawKubeClient(kc);
  const namespaces = values.namespace ? [values.namespace] : await namespacesWithWpgw(rest);
  let code = 0;
  for (const ns of namespaces) {
    try {
      if (!(await restoreNamespace(rest, ns, { roll: Boolean(values.roll), timeoutMs }, io))) code = 1;
    } catch (err) {
      io.stderr(`${ns}: ${errorMessage(err)}\n`);
      code = 1;
    }
  }
  if (namespaces.length === 0) io.stdout('nothing of wpgw in any namespace\n');
  return code;
}

/** Namespaces with a re-pointed Service, an injected pod or an object of ours. */
export async function namespacesWithWpgw(rest: KubeRest): Promise<string[]> {
  const found = new Set<string>();
  const add = (items: Array<{ metadata?: { namespace?: string } }> | undefined) =>
    items?.forEach((o) => o.metadata?.namespace && found.add(o.metadata.namespace));
  add(
    (
      await rest.request<List<V1Pod>>('GET', collectionPath(kindInfo('v1', 'Pod')), {
        query: { labelSelector: MANAGED_LABEL },
      })
    ).items,
  );
  add(
    (await rest.request<List<V1Service>>('GET', collectionPath(kindInfo('v1', 'Service')))).items?.filter((s) =>
      serviceIsOurs(s),
    ),
  );
  add(await listAllManaged(rest, undefined));
  return [...found].sort();
}

const serviceIsOurs = (s: V1Service) => s.metadata?.annotations?.[SERVICE_ORIGINAL_ANNOTATION] !== undefined;

export async function readPlan(
  rest: KubeRest,
  ns: string,
): Promise<{ plan: RestorePlan; nsObj: V1Namespace; lookup: OwnerLookup }> {
  const nsObj = await rest.request<V1Namespace>('GET', objectPath(kindInfo('v1', 'Namespace'), undefined, ns));
  const [services, pods, managed] = await Promise.all([
    rest.request<List<V1Service>>('GET', collectionPath(kindInfo('v1', 'Service'), ns)),
    rest.request<List<V1Pod>>('GET', collectionPath(kindInfo('v1', 'Pod'), ns), {
      query: { labelSelector: MANAGED_LABEL },
    }),
    listAllManaged(rest, ns),
  ]);
  const plan = planRestore({ namespace: ns, services: services.items ?? [], pods: pods.items ?? [], managed });
  const workloads = new Map<string, unknown>();
  if (plan.pointing.length > 0) {
    const kinds: Array<[string, string]> = [
      ['apps/v1', 'ReplicaSet'],
      ['apps/v1', 'Deployment'],
      ['apps/v1', 'StatefulSet'],
      ['apps/v1', 'DaemonSet'],
      [ROLLOUT_KIND.apiVersion, ROLLOUT_KIND.kind],
    ];
    for (const [apiVersion, kind] of kinds) {
      const list = await rest
        .request<List<{ metadata?: { name?: string } }>>('GET', collectionPath(kindInfo(apiVersion, kind), ns))
        .catch((err: unknown) => {
          // Argo Rollouts not installed (or not readable): no owner of that kind.
          if (errorStatus(err) === 404 || errorStatus(err) === 403) return { items: [] };
          throw err;
        });
      for (const o of list.items ?? []) workloads.set(`${kind}/${o.metadata?.name}`, o);
    }
  }
  const get =
    <T>(kind: string) =>
    (_ns: string, name: string) =>
      workloads.get(`${kind}/${name}`) as T | undefined;
  return {
    plan,
    nsObj,
    lookup: {
      replicaSet: get('ReplicaSet'),
      deployment: get('Deployment'),
      statefulSet: get('StatefulSet'),
      daemonSet: get('DaemonSet'),
      rollout: get(ROLLOUT_KIND.kind),
    },
  };
}

/** Runs the plan to the end (or to the pods that need the user). True when nothing of wpgw is left. */
export async function restoreNamespace(
  rest: KubeRest,
  ns: string,
  opts: { roll: boolean; timeoutMs: number },
  io: CliIO,
): Promise<boolean> {
  const deadline = Date.now() + opts.timeoutMs;
  const rolled = new Set<string>();
  const patch = (apiVersion: string, kind: string, name: string, body: unknown) =>
    rest.request('PATCH', objectPath(kindInfo(apiVersion, kind), ns, name), {
      query: { fieldManager: FIELD_MANAGER },
      body,
      contentType: MERGE_PATCH_CONTENT_TYPE,
    });
  let did = false;
  for (;;) {
    const { plan, nsObj, lookup } = await readPlan(rest, ns);
    if (isOptedIn(nsObj)) {
      io.stderr(
        `${ns}: still labelled ${NS_INJECT_LABEL}=${NS_INJECT_ENABLED}; remove the label first (the webhook would re-point restored Services)\n`,
      );
      return false;
    }
    const say = (line: string) => io.stdout(`${ns}: ${line}\n`);
    switch (plan.phase) {
      case 'done':
        if (!did) say('nothing to restore');
        return true;
      case 'gateway':
        if (plan.gatewayPatch) {
          await patch('apps/v1', 'Deployment', 'wpgw', plan.gatewayPatch);
          say('labelled the gateway pods for auto-mTLS; waiting for their rollout');
        }
        break;
      case 'callers':
      case 'cleanup':
        for (const o of plan.deletions) {
          await rest
            .request('DELETE', objectPath(kindInfo(o.apiVersion, o.kind), ns, o.metadata.name), {
              body: { apiVersion: 'v1', kind: 'DeleteOptions', propagationPolicy: 'Background' },
            })
            .catch((err: unknown) => {
              if (errorStatus(err) !== 404) throw err;
            });
          say(`deleted ${o.kind}/${o.metadata.name}`);
        }
        break;
      case 'services':
        for (const s of plan.services) {
          await patch('v1', 'Service', s.service, s.patch);
          say(`restored Service/${s.service} (selector ${JSON.stringify(s.selector)})`);
        }
        break;
      case 'pods': {
        const owners = new Map<string, { kind: string; name: string; pods: string[] }>();
        for (const p of plan.pointing) {
          const o = resolveTopOwner(p, lookup);
          const e = owners.get(ownerKey(o)) ?? { ...o, pods: [] };
          e.pods.push(p.metadata?.name ?? '');
          owners.set(ownerKey(o), e);
        }
        for (const [key, o] of owners) {
          const restartable = isRestartable(o.kind) && restartableObject(ns, o, lookup) !== undefined;
          if (opts.roll && restartable && !rolled.has(key)) {
            const kind = o.kind as RestartableKind;
            await patch(RESTARTABLE_API_VERSIONS[kind], kind, o.name, restartPatch(new Date(), kind));
            rolled.add(key);
            say(`restarted ${key} (pods ${o.pods.join(', ')} point at the gateway)`);
          } else if (!opts.roll || !restartable) {
            say(
              `${key}: pods ${o.pods.join(', ')} still point at the gateway; ${restartable ? `kubectl rollout restart ${o.kind.toLowerCase()}/${o.name} -n ${ns}` : 'delete them'}`,
            );
          }
        }
        if (!opts.roll || [...owners].some(([k]) => !rolled.has(k))) {
          say('the gateway and the rest are kept until those pods are replaced; re-run afterwards (or with --roll)');
          return false;
        }
        break;
      }
    }
    did = true;
    if (plan.phase === 'gateway' || plan.phase === 'pods') {
      if (Date.now() > deadline) {
        say(`timed out in phase ${plan.phase}; re-run to continue`);
        return false;
      }
      await new Promise((r) => setTimeout(r, 2_000));
    }
  }
}
