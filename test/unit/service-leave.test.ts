// One Service handed back while its namespace stays in (core/service-leave.ts): the real webhook
// core re-points it and keeps it re-pointed when it opts out, the real desired state is staged
// phase by phase, and the restore patch leaves exactly the user's Service.
import type { V1Deployment, V1Service } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { desiredNamespaceState } from '../../src/core/desired.js';
import type { KubeObject, NamespaceInput } from '../../src/core/desired-types.js';
import { leaveReason, planServiceLeaves, stageLeaving } from '../../src/core/service-leave.js';
import { mutateService } from '../../src/core/service.js';
import { applyMergePatch } from '../lib/merge-patch.js';
import { deepCopy, find, injectedPod, namespaceObject, repointedService, service, spec } from './helpers/builders.js';
import { staticContext } from '../lib/admission.js';

const NS = 'shop';
const WIN = { app: 'legacy' };
const OPTS = { clusterDomain: 'cluster.local', defaultGatewayReplicas: 2, corednsImage: 'coredns:test' };
const user = (): V1Service => service('legacy', NS, { app: 'legacy' }, [{ name: 'http', port: 8080, targetPort: 80 }]);

function optedOut(s: V1Service): V1Service {
  const out = deepCopy(s);
  out.metadata!.labels = { ...out.metadata!.labels, 'wpgw.io/inject': 'false' };
  return out;
}

/** The webhook's answer to the user adding wpgw.io/inject=false to the re-pointed Service. */
function admitted(s: V1Service): V1Service {
  const out = mutateService(s, NS, staticContext({ windowsLabelSets: { [NS]: [WIN] } }));
  if (out.action !== 'mutate') throw new Error(JSON.stringify(out));
  expect(out.reason).toBe('repointed');
  expect(out.warnings.join('\n')).toMatch(/opted out .*stays re-pointed until the wpgw controller .*wpgw-in-legacy/);
  return { ...out.service, metadata: { ...out.service.metadata, resourceVersion: '7' } };
}

function gateway(labelled: boolean, ready: boolean): KubeObject {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: {
      name: 'wpgw',
      namespace: NS,
      labels: { 'app.kubernetes.io/managed-by': 'wpgw', 'wpgw.io/for': 'namespace' },
      generation: 2,
    } as KubeObject['metadata'],
    spec: { replicas: 2, template: { metadata: { labels: labelled ? { 'security.istio.io/tlsMode': 'istio' } : {} } } },
    // Not ready: the labelled pods are up but a pod of the old template still serves.
    status: ready
      ? { observedGeneration: 2, replicas: 2, readyReplicas: 2, updatedReplicas: 2, availableReplicas: 2 }
      : { observedGeneration: 2, replicas: 3, readyReplicas: 3, updatedReplicas: 2, availableReplicas: 3 },
  } as KubeObject;
}

const callerRule: KubeObject = {
  apiVersion: 'networking.istio.io/v1',
  kind: 'DestinationRule',
  metadata: {
    name: 'wpgw-in-legacy',
    namespace: NS,
    labels: { 'app.kubernetes.io/managed-by': 'wpgw', 'wpgw.io/for': 'service.legacy' },
  },
  spec: { host: 'legacy.shop.svc.cluster.local', trafficPolicy: { tls: { mode: 'ISTIO_MUTUAL' } } },
};

function staged(services: V1Service[], managed: KubeObject[], lingering: V1Service[] = []) {
  const pods = [injectedPod({ name: 'legacy-1', labels: WIN, ip: '10.0.0.1' })];
  const plan = planServiceLeaves({ namespace: NS, services, windowsLabelSets: [WIN], managed, lingering });
  // The live gateway, as the controller's input carries it (a gateway from before the tlsMode
  // label keeps its caller rules until it has rolled out with it).
  const gatewayDeployment = managed.find((o) => o.kind === 'Deployment' && o.metadata.name === 'wpgw') as
    V1Deployment | undefined;
  const input: NamespaceInput = {
    namespace: namespaceObject(NS),
    pods,
    services: plan.services,
    clusterDnsIP: '10.96.0.10',
    ...(gatewayDeployment ? { gatewayDeployment } : {}),
  };
  return { plan, state: stageLeaving(desiredNamespaceState(input, OPTS), plan, input) };
}

describe('leaveReason', () => {
  const live = repointedService(user(), WIN);
  it('names an opted-out or unbacked re-pointed Service, and nothing else', () => {
    expect(leaveReason(live, NS, [WIN])).toBeUndefined();
    expect(leaveReason(optedOut(live), NS, [WIN])).toBe('opted_out');
    // The app moved to Linux, or its Windows workload was deleted: no template or pod matches.
    expect(leaveReason(live, NS, [{ app: 'other' }])).toBe('no_windows_pods');
    expect(leaveReason(live, NS, [])).toBe('no_windows_pods');
    // Unknown (render has no workload list): never guessed as unbacked.
    expect(leaveReason(live, NS, undefined)).toBeUndefined();
    expect(leaveReason(optedOut(user()), NS, [])).toBeUndefined();
    expect(
      leaveReason({ ...live, metadata: { ...live.metadata, deletionTimestamp: new Date() } }, NS, []),
    ).toBeUndefined();
  });
});

describe('planServiceLeaves + stageLeaving: the namespace-opt-out order, for one Service', () => {
  const live = admitted(optedOut(repointedService(user(), WIN)));

  it('gateway: labels the gateway pods for auto-mTLS and keeps the caller rule until they rolled out', () => {
    for (const gw of [gateway(false, true), gateway(true, false)]) {
      const { plan, state } = staged([live], [gw, callerRule]);
      expect(plan.leaving).toEqual([{ service: 'legacy', reason: 'opted_out', phase: 'gateway' }]);
      expect(plan.restores).toEqual([]);
      expect(
        spec(find(state.objects, 'Deployment', 'wpgw')).template.metadata.labels['security.istio.io/tlsMode'],
      ).toBe('istio');
      expect(spec(find(state.objects, 'DestinationRule', 'wpgw-in-legacy')).trafficPolicy.tls.mode).toBe(
        'ISTIO_MUTUAL',
      );
      // Its clients will reach the Windows pods directly: admitted before anything changes for them.
      expect(spec(find(state.objects, 'NetworkPolicy', 'wpgw-direct-legacy'))).toMatchObject({
        podSelector: { matchLabels: { app: 'legacy', 'wpgw.io/managed': 'true' } },
        ingress: [{ ports: [{ protocol: 'TCP', port: 80 }] }],
      });
    }
  });

  it('callers: drops the caller rule once the labelled gateway is ready; the inbound listener stays', () => {
    const { plan, state } = staged([live], [gateway(true, true), callerRule]);
    expect(plan.leaving[0]!.phase).toBe('callers');
    expect(plan.restores).toEqual([]);
    expect(find(state.objects, 'DestinationRule', 'wpgw-in-legacy')).toBeUndefined();
    expect(find(state.objects, 'Gateway', 'wpgw-in-legacy')).toBeDefined();
    expect(find(state.objects, 'Service', 'legacy-app')).toBeDefined();
  });

  it('services: restores the Service exactly once its caller rule is gone', () => {
    const { plan, state } = staged([live], [gateway(true, true)]);
    expect(plan.leaving[0]!.phase).toBe('services');
    expect(find(state.objects, 'DestinationRule', 'wpgw-in-legacy')).toBeUndefined();
    const after = applyMergePatch(live, plan.restores[0]!.patch) as V1Service;
    expect(after.spec).toEqual({ ...user().spec });
    expect(after.metadata!.labels).toEqual({ 'wpgw.io/inject': 'false' });
    expect(after.metadata!.annotations ?? {}).toEqual({});
  });

  it('lingering: a restored Service keeps its listener, <name>-app and gateway label, not its caller rule', () => {
    const restored = applyMergePatch(
      live,
      planServiceLeaves({ namespace: NS, services: [live], windowsLabelSets: [WIN], managed: [] }).restores[0]!.patch,
    ) as V1Service;
    const { plan, state } = staged([restored], [gateway(true, true)], [live]);
    expect(plan.leaving).toEqual([{ service: 'legacy', reason: 'opted_out', phase: 'lingering' }]);
    expect(plan.restores).toEqual([]);
    for (const [kind, name] of [
      ['Gateway', 'wpgw-in-legacy'],
      ['VirtualService', 'wpgw-in-legacy'],
      ['Service', 'legacy-app'],
      ['NetworkPolicy', 'wpgw-direct-legacy'],
    ]) {
      expect(find(state.objects, kind!, name!), `${kind}/${name}`).toBeDefined();
    }
    expect(find(state.objects, 'DestinationRule', 'wpgw-in-legacy')).toBeUndefined();
    expect(spec(find(state.objects, 'Deployment', 'wpgw')).template.metadata.labels['security.istio.io/tlsMode']).toBe(
      'istio',
    );
    // Grace over: the ordinary desired state of a namespace without that Service re-pointed.
    const done = staged([restored], [gateway(true, true)]);
    expect(done.plan.leaving).toEqual([]);
    expect(find(done.state.objects, 'Gateway', 'wpgw-in-legacy')).toBeUndefined();
    // the gateway pods always carry the label (callers' auto-mTLS, docs/user-policies.md): no rollout back
    expect(
      spec(find(done.state.objects, 'Deployment', 'wpgw')).template.metadata.labels['security.istio.io/tlsMode'],
    ).toBe('istio');
    expect(find(done.state.objects, 'NetworkPolicy', 'wpgw-direct-legacy')).toBeDefined();
  });

  it('a Service no Windows pods back any more goes the same way; the others stay as they are', () => {
    const stays = repointedService(service('billing', NS, { app: 'billing' }, [{ port: 9090, targetPort: 90 }]), {
      app: 'billing',
    });
    const unbacked = repointedService(user(), WIN);
    const plan = planServiceLeaves({
      namespace: NS,
      services: [stays, unbacked],
      windowsLabelSets: [{ app: 'billing' }],
      managed: [gateway(false, true), callerRule],
    });
    expect(plan.leaving).toEqual([{ service: 'legacy', reason: 'no_windows_pods', phase: 'gateway' }]);
    const none = planServiceLeaves({
      namespace: NS,
      services: [stays, unbacked],
      windowsLabelSets: [{ app: 'billing' }, WIN],
      managed: [gateway(false, true), callerRule],
    });
    expect(none.leaving).toEqual([]);
    const input: NamespaceInput = { namespace: namespaceObject(NS), pods: [], services: none.services };
    const state = desiredNamespaceState(input, OPTS);
    // Nothing leaving: the desired state is untouched (no rollout).
    expect(stageLeaving(state, none, input)).toBe(state);
  });
});

describe('the webhook keeps an opted-out Service re-pointed for the controller, unless it cannot', () => {
  it('restores at once what could not stay re-pointed anyway (a UDP port added with the opt-out)', () => {
    const live = optedOut(repointedService(user(), WIN));
    live.spec!.ports = [...live.spec!.ports!, { name: 'dns', port: 53, protocol: 'UDP' }];
    const out = mutateService(live, NS, staticContext({ windowsLabelSets: { [NS]: [WIN] } }));
    expect(out).toMatchObject({ action: 'mutate', reason: 'restored' });
    if (out.action === 'mutate') {
      expect(out.service.spec!.selector).toEqual({ app: 'legacy' });
      expect(out.warnings.join('\n')).toMatch(
        /53\/UDP cannot go through the wpgw gateway; restored to its original selector now/,
      );
    }
  });
});
