// `wpgw uninstall`: remove wpgw from the cluster without an outage, in the only safe order:
// (1) opt every namespace out and wait until each is handed back (the controller does it, as on
// any opt-out: core/restore.ts; without a live controller this command does it, as `wpgw
// restore --roll`), (2) delete the MutatingWebhookConfiguration, (3) delete the controller and
// the webhook as manifests/ installs them. It refuses (exit 3) while that would break workloads,
// naming each, unless --force. Safe to run again: what is gone is skipped.
import type { V1Namespace, V1Pod } from '@kubernetes/client-node';
import {
  MERGE_PATCH_CONTENT_TYPE,
  RawKubeClient,
  errorMessage,
  errorStatus,
  type KubeRest,
} from '../cluster/client.js';
import { checkApiServer, loadKubeConfig } from '../cluster/index.js';
import { collectionPath, kindInfo, objectPath, type KindInfo } from '../cluster/kinds.js';
import { annotationsOf, isOptedIn } from '../cluster/objects.js';
import { isRestartable, ownerKey, resolveTopOwner, restartableObject } from '../controller/owners.js';
import { leavingMeshBlockers, type PeerAuthenticationLike, type UninstallBlocker } from '../core/uninstall.js';
import {
  FIELD_MANAGER,
  MANAGED_BY_LABEL,
  NS_INJECT_ENABLED,
  NS_INJECT_LABEL,
  RESTART_ON_IP_CHANGE_ANNOTATION,
} from '../names.js';
import { durationFlag, parseCommand, UsageError } from './flags.js';
import { LEASE_TIMINGS } from '../defaults.js';
import type { CliIO } from './main.js';
import { namespacesWithWpgw, readPlan, restoreNamespace } from './restore.js';

const HELP = `Usage: wpgw uninstall [--dry-run] [--force] [--timeout 15m] [--install-namespace wpgw-system] [--keep-install] [--require-controller]
  Removes wpgw without an outage: (1) removes ${NS_INJECT_LABEL}=${NS_INJECT_ENABLED} from every namespace and
  waits until each is handed back (Services restored, Windows pods replaced, gateways deleted: the
  controller does it; without a live controller, this command does it like \`wpgw restore --roll\`),
  (2) deletes the MutatingWebhookConfiguration wpgw, (3) deletes the controller and the webhook
  (Deployments, Services, PodDisruptionBudgets, RBAC, Secret, Lease; the namespace if manifests/
  created it). Refuses while that would break workloads and names them, unless --force.
      --dry-run             print what it would do and what it would break; change nothing
      --force               go ahead although it breaks what it names (restarts pods whose namespace
                            disabled restarts; leaves pods it cannot restart, and their gateway, behind)
      --timeout D           how long to wait for the namespaces to be handed back (default 15m)
      --install-namespace   where the controller and webhook run (default wpgw-system)
      --keep-install        stop after (1): the Helm chart's pre-delete hook, Helm deletes the rest
      --require-controller  fail instead of restoring without the controller (the hook's RBAC is read-only)
Exit: 0 nothing of wpgw left (or --dry-run: it would go ahead), 1 failed or incomplete (re-run to
continue), 2 usage, 3 refused: it would break the workloads it names.
`;

export const REFUSED_EXIT = 3;
const WEBHOOK_CONFIG = 'wpgw';
const POLL_MS = 2_000;

interface List<T> {
  items?: T[];
}

type Path = Pick<KindInfo, 'apiVersion' | 'plural' | 'namespaced'>;
const at = (apiVersion: string, plural: string, namespaced: boolean): Path => ({ apiVersion, plural, namespaced });
const WEBHOOK_CONFIGS = at('admissionregistration.k8s.io/v1', 'mutatingwebhookconfigurations', false);

/** What manifests/ and charts/wpgw install (fixed names), deleted in this order; plus what the processes made at run time. */
export function installObjects(ns: string): Array<{ what: string; path: string }> {
  const rbac = 'rbac.authorization.k8s.io/v1';
  const list: Array<[Path, string, boolean]> = [
    [at('apps/v1', 'deployments', true), 'wpgw-controller', true],
    [at('apps/v1', 'deployments', true), 'wpgw-webhook', true],
    [at('v1', 'services', true), 'wpgw-webhook', true],
    [at('policy/v1', 'poddisruptionbudgets', true), 'wpgw-controller', true],
    [at('policy/v1', 'poddisruptionbudgets', true), 'wpgw-webhook', true],
    [at('coordination.k8s.io/v1', 'leases', true), 'wpgw-controller', true],
    [at('v1', 'secrets', true), 'wpgw-webhook-tls', true],
    [at(rbac, 'rolebindings', true), 'wpgw-controller', true],
    [at(rbac, 'rolebindings', true), 'wpgw-webhook', true],
    [at(rbac, 'roles', true), 'wpgw-controller', true],
    [at(rbac, 'roles', true), 'wpgw-webhook', true],
    [at(rbac, 'clusterrolebindings', false), 'wpgw-controller', false],
    [at(rbac, 'clusterrolebindings', false), 'wpgw-webhook', false],
    [at(rbac, 'clusterroles', false), 'wpgw-controller', false],
    [at(rbac, 'clusterroles', false), 'wpgw-webhook', false],
    [at('v1', 'serviceaccounts', true), 'wpgw-controller', true],
    [at('v1', 'serviceaccounts', true), 'wpgw-webhook', true],
  ];
  return list.map(([p, name, namespaced]) => ({
    what: `${p.plural}/${name}${namespaced ? ` in ${ns}` : ''}`,
    path: objectPath(p, namespaced ? ns : undefined, name),
  }));
}

export async function uninstallCommand(args: string[], io: CliIO): Promise<number> {
  const parsed = parseCommand(args, io, HELP, {
    'dry-run': { type: 'boolean' },
    force: { type: 'boolean' },
    timeout: { type: 'string' },
    'install-namespace': { type: 'string' },
    'keep-install': { type: 'boolean' },
    'require-controller': { type: 'boolean' },
  });
  if (!parsed) return 0;
  const { values } = parsed;
  const timeoutMs = durationFlag('timeout', values.timeout, '15m');
  const installNs = values['install-namespace'] ?? 'wpgw-system';
  if (!/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(installNs))
    throw new UsageError(`--install-namespace: "${installNs}" is not a namespace name`);
  const kc = loadKubeConfig();
  await checkApiServer(kc, { timeoutMs: 5_000 });
  return uninstall(
    new RawKubeClient(kc),
    {
      dryRun: Boolean(values['dry-run']),
      force: Boolean(values.force),
      timeoutMs,
      installNs,
      keepInstall: Boolean(values['keep-install']),
      requireController: Boolean(values['require-controller']),
    },
    io,
  );
}

export interface UninstallOptions {
  dryRun: boolean;
  force: boolean;
  timeoutMs: number;
  installNs: string;
  keepInstall: boolean;
  requireController: boolean;
  pollMs?: number;
}

export async function uninstall(rest: KubeRest, o: UninstallOptions, io: CliIO): Promise<number> {
  const say = (line: string) => io.stdout(`${line}\n`);
  const nsInfo = kindInfo('v1', 'Namespace');
  const optedIn = (
    (
      await rest.request<List<V1Namespace>>('GET', collectionPath(nsInfo), {
        query: { labelSelector: `${NS_INJECT_LABEL}=${NS_INJECT_ENABLED}` },
      })
    ).items ?? []
  )
    .map((n) => n.metadata?.name ?? '')
    .sort();
  const namespaces = [...new Set([...optedIn, ...(await namespacesWithWpgw(rest))])].sort();
  const controller = await controllerAlive(rest, o.installNs);
  const { blockers, disabledRestart } = await findBlockers(rest, namespaces);
  // --keep-install (the Helm hook, whose RBAC cannot read them): the install is Helm's to delete.
  const helmRelease = o.keepInstall ? undefined : await helmReleaseOf(rest, o.installNs);
  const webhookConfig =
    !o.keepInstall && !helmRelease && (await exists(rest, objectPath(WEBHOOK_CONFIGS, undefined, WEBHOOK_CONFIG)));
  const install = o.keepInstall || helmRelease ? [] : await existing(rest, installObjects(o.installNs));
  const ownNamespace = !o.keepInstall && !helmRelease && (await createdByManifests(rest, o.installNs));

  if (namespaces.length === 0 && !webhookConfig && install.length === 0 && !ownNamespace) {
    say(
      helmRelease && !o.keepInstall
        ? `nothing of wpgw left outside Helm release ${helmRelease}: helm uninstall ${helmRelease} -n ${o.installNs} removes the rest`
        : 'nothing of wpgw left to remove',
    );
    return 0;
  }
  const prefix = o.dryRun ? 'would ' : '';
  if (optedIn.length > 0) say(`${prefix}opt out: ${optedIn.join(', ')}`);
  if (namespaces.length > 0) {
    say(
      `${prefix}hand back: ${namespaces.join(', ')} (${controller ? `by the controller, whose Lease ${o.installNs}/wpgw-controller is held` : 'the controller is not running: by this command, restarting the owners of injected pods'})`,
    );
  }
  if (!o.keepInstall) {
    if (webhookConfig) say(`${prefix}delete MutatingWebhookConfiguration ${WEBHOOK_CONFIG}`);
    if (helmRelease)
      say(
        `installed by Helm release ${helmRelease}: helm uninstall ${helmRelease} -n ${o.installNs} removes the webhook configuration, the controller and the webhook`,
      );
    for (const x of install) say(`${prefix}delete ${x.what}`);
    if (ownNamespace) say(`${prefix}delete namespace ${o.installNs} (created by manifests/)`);
  }
  for (const b of blockers) say(`would break: ${b.subject}: ${b.message}`);
  if (blockers.length > 0 && !o.force) {
    io.stderr(
      `refusing: uninstalling would break ${blockers.length} workload(s) named above; fix them, or pass --force\n`,
    );
    return REFUSED_EXIT;
  }
  if (!controller && o.requireController && namespaces.length > 0) {
    io.stderr(
      `the controller is not running (Lease ${o.installNs}/wpgw-controller not renewed), and this run may not restore without it; start it, or run wpgw restore --all --roll\n`,
    );
    return 1;
  }
  if (o.dryRun) return 0;

  for (const ns of optedIn) {
    await rest.request('PATCH', objectPath(nsInfo, undefined, ns), {
      query: { fieldManager: FIELD_MANAGER },
      body: { metadata: { labels: { [NS_INJECT_LABEL]: null } } },
      contentType: MERGE_PATCH_CONTENT_TYPE,
    });
    say(`opted out namespace ${ns}`);
  }
  const left = await handBack(rest, namespaces, { ...o, controller, disabledRestart }, io);
  if (left.length > 0 && !o.force) {
    io.stderr(`not handed back yet: ${left.join(', ')}; the webhook and the controller are kept: re-run to continue\n`);
    return 1;
  }
  if (!o.keepInstall) {
    if (await del(rest, objectPath(WEBHOOK_CONFIGS, undefined, WEBHOOK_CONFIG)))
      say(`deleted MutatingWebhookConfiguration ${WEBHOOK_CONFIG}`);
    for (const x of install) if (await del(rest, x.path)) say(`deleted ${x.what}`);
    if (ownNamespace && (await del(rest, objectPath(nsInfo, undefined, o.installNs))))
      say(`deleted namespace ${o.installNs}`);
  }
  if (left.length > 0) {
    io.stderr(
      `forced: ${left.join(', ')} still hold wpgw's gateway for pods it could not replace (listed above); delete those pods, then run wpgw restore --all --roll\n`,
    );
    return 1;
  }
  say(o.keepInstall ? 'every namespace is handed back' : 'wpgw is removed');
  return 0;
}

/** A controller is leading: its Lease is held and was renewed within its duration. */
async function controllerAlive(rest: KubeRest, ns: string): Promise<boolean> {
  try {
    const lease = await rest.request<{
      spec?: { holderIdentity?: string; renewTime?: string; leaseDurationSeconds?: number };
    }>('GET', objectPath(at('coordination.k8s.io/v1', 'leases', true), ns, 'wpgw-controller'));
    const s = lease.spec ?? {};
    if (!s.holderIdentity || !s.renewTime) return false;
    return (
      Date.parse(s.renewTime) +
        (s.leaseDurationSeconds ? s.leaseDurationSeconds * 1000 : LEASE_TIMINGS.durationMs) * 2 >
      Date.now()
    );
  } catch (err) {
    if (errorStatus(err) === 404) return false;
    throw err;
  }
}

/** Pods that would keep resolving through an unmaintained gateway, pods whose calls would fail, restarts disabled. */
async function findBlockers(
  rest: KubeRest,
  namespaces: string[],
): Promise<{ blockers: UninstallBlocker[]; disabledRestart: Set<string> }> {
  const blockers: UninstallBlocker[] = [];
  const disabledRestart = new Set<string>();
  const pointing: V1Pod[] = [];
  for (const ns of namespaces) {
    const { plan, nsObj, lookup } = await readPlan(rest, ns);
    pointing.push(...plan.pointing);
    const stuck: string[] = [];
    for (const p of plan.pointing) {
      const owner = resolveTopOwner(p, lookup);
      if (!isRestartable(owner.kind) || restartableObject(ns, owner, lookup) === undefined)
        stuck.push(`${p.metadata?.name} (${ownerKey(owner)})`);
    }
    if (stuck.length > 0) {
      blockers.push({
        subject: `Namespace ${ns}`,
        message: `pods ${stuck.join(', ')} have no owner wpgw can restart: they would keep resolving their names through a gateway nobody maintains; delete them (their owner re-creates them without wpgw)`,
      });
    }
    if (plan.pointing.length > 0 && annotationsOf(nsObj)[RESTART_ON_IP_CHANGE_ANNOTATION] === 'false') {
      disabledRestart.add(ns);
      blockers.push({
        subject: `Namespace ${ns}`,
        message: `${RESTART_ON_IP_CHANGE_ANNOTATION}=false: its pods ${plan.pointing.map((p) => p.metadata?.name).join(', ')} are not restarted by the controller and would keep their gateway; restart them (--force restarts them)`,
      });
    }
  }
  const pas = await rest
    .request<List<PeerAuthenticationLike>>(
      'GET',
      collectionPath(at('security.istio.io/v1', 'peerauthentications', true)),
    )
    .then((l) => l.items ?? [])
    .catch((err: unknown) => {
      // No Istio CRDs: no PeerAuthentication can refuse anything.
      if (errorStatus(err) === 404) return [];
      throw err;
    });
  blockers.push(...leavingMeshBlockers(pointing, pas));
  return { blockers, disabledRestart };
}

/** Waits until every namespace is handed back; returns those that are not (timeout, or forced leftovers). */
async function handBack(
  rest: KubeRest,
  namespaces: string[],
  o: UninstallOptions & { controller: boolean; disabledRestart: Set<string> },
  io: CliIO,
): Promise<string[]> {
  const deadline = Date.now() + o.timeoutMs;
  const pending = new Set(namespaces);
  const stuck = new Set<string>();
  while (pending.size > 0) {
    for (const ns of [...pending]) {
      try {
        const { plan } = await readPlan(rest, ns);
        if (plan.phase === 'done') {
          pending.delete(ns);
          io.stdout(`handed back namespace ${ns}\n`);
          continue;
        }
        // Nobody else will finish it: without the controller, or where it must not restart pods.
        const ours = !o.controller || (plan.phase === 'pods' && o.force && o.disabledRestart.has(ns));
        if (ours && !stuck.has(ns)) {
          if (await restoreNamespace(rest, ns, { roll: true, timeoutMs: Math.max(0, deadline - Date.now()) }, io)) {
            pending.delete(ns);
            io.stdout(`handed back namespace ${ns}\n`);
          } else stuck.add(ns);
        }
      } catch (err) {
        io.stderr(`${ns}: ${errorMessage(err)}\n`);
      }
    }
    // Forced: pods nothing can restart keep their namespace's gateway; do not wait for them.
    if (o.force && [...pending].every((ns) => stuck.has(ns))) break;
    if (pending.size === 0 || Date.now() > deadline) break;
    await new Promise((r) => setTimeout(r, o.pollMs ?? POLL_MS));
  }
  for (const ns of pending) if (!stuck.has(ns)) io.stderr(`timed out waiting for namespace ${ns} to be handed back\n`);
  return [...pending].sort();
}

async function exists(rest: KubeRest, path: string): Promise<boolean> {
  try {
    await rest.request('GET', path);
    return true;
  } catch (err) {
    if (errorStatus(err) === 404) return false;
    throw err;
  }
}

async function existing<T extends { path: string }>(rest: KubeRest, items: T[]): Promise<T[]> {
  const found = await Promise.all(items.map((x) => exists(rest, x.path)));
  return items.filter((_, i) => found[i]);
}

/** True when this call deleted it; false when it was already gone. */
async function del(rest: KubeRest, path: string): Promise<boolean> {
  try {
    await rest.request('DELETE', path, {
      body: { apiVersion: 'v1', kind: 'DeleteOptions', propagationPolicy: 'Background' },
    });
    return true;
  } catch (err) {
    if (errorStatus(err) === 404) return false;
    throw err;
  }
}

/** The Helm release that installed the controller, if Helm did (then `helm uninstall` removes the rest). */
async function helmReleaseOf(rest: KubeRest, ns: string): Promise<string | undefined> {
  try {
    const d = await rest.request<{
      metadata?: { labels?: Record<string, string>; annotations?: Record<string, string> };
    }>('GET', objectPath(at('apps/v1', 'deployments', true), ns, 'wpgw-controller'));
    return d.metadata?.labels?.[MANAGED_BY_LABEL] === 'Helm'
      ? (d.metadata.annotations?.['meta.helm.sh/release-name'] ?? 'wpgw')
      : undefined;
  } catch (err) {
    if (errorStatus(err) === 404) return undefined;
    throw err;
  }
}

/** manifests/ creates its namespace (kustomize labels it part-of=wpgw); Helm's is the user's own. */
async function createdByManifests(rest: KubeRest, ns: string): Promise<boolean> {
  try {
    const n = await rest.request<V1Namespace>('GET', objectPath(kindInfo('v1', 'Namespace'), undefined, ns));
    return n.metadata?.labels?.['app.kubernetes.io/part-of'] === 'wpgw' && !isOptedIn(n);
  } catch (err) {
    if (errorStatus(err) === 404) return false;
    throw err;
  }
}
