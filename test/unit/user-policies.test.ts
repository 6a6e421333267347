// Users' own Istio policies for re-pointed Services (issue 13, docs/user-policies.md): what the
// desired state makes of them. Inputs come from the real admission core (repointedService).
import type { V1Deployment } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { desiredNamespaceState } from '../../src/core/desired.js';
import type { DesiredOptions, DesiredState, NamespaceInput } from '../../src/core/desired-types.js';
import { injectedPod, namespaceObject, ofKind, repointedService, service, spec } from './helpers/builders.js';

const OPTS: DesiredOptions = { clusterDomain: 'cluster.local', defaultGatewayReplicas: 2, corednsImage: 'registry.example/coredns:test' };
const LEGACY = 'legacy.shop.svc.cluster.local';

function legacy() {
  return repointedService(service('legacy', 'shop', { app: 'legacy' }, [{ name: 'http', port: 8080, targetPort: 80 }]), { app: 'legacy' }, { uid: 'uid-legacy' });
}

function state(extra: Partial<NamespaceInput> = {}): DesiredState {
  return desiredNamespaceState(
    {
      namespace: namespaceObject('shop'),
      pods: [injectedPod({ name: 'legacy-1', labels: { app: 'legacy', version: 'v1' }, outbound: 'example.com:80', ip: '10.244.64.10' })],
      services: [legacy()],
      clusterDnsIP: '10.96.0.10',
      ...extra,
    },
    OPTS,
  );
}

/** The live gateway Deployment as the API server reports it. */
function liveGateway(o: { labelled: boolean; ready: boolean }): V1Deployment {
  return {
    metadata: { name: 'wpgw', namespace: 'shop', generation: 3, labels: { 'app.kubernetes.io/managed-by': 'wpgw' } },
    spec: {
      replicas: 2,
      selector: { matchLabels: { 'wpgw.io/gateway': 'shop' } },
      template: { metadata: { labels: { 'wpgw.io/gateway': 'shop', ...(o.labelled ? { 'security.istio.io/tlsMode': 'istio' } : {}) } } },
    },
    status: { observedGeneration: o.ready ? 3 : 2, readyReplicas: 2, updatedReplicas: o.ready ? 2 : 1 },
  };
}

const callerRules = (s: DesiredState) => ofKind(s.objects, 'DestinationRule').filter((d) => spec(d).host === LEGACY);

describe('item 5: callers reach the wpgw over mTLS without a DestinationRule for <name>', () => {
  it('the gateway pods carry security.istio.io/tlsMode=istio, so callers\' auto-mTLS picks Istio mTLS', () => {
    const dep = ofKind(state().objects, 'Deployment').find((d) => d.metadata.name === 'wpgw');
    expect(spec(dep).template.metadata.labels['security.istio.io/tlsMode']).toBe('istio');
  });

  it('no caller-side DestinationRule for <name> (it would compete with the user\'s DRs for that host)', () => {
    expect(callerRules(state())).toEqual([]);
    expect(callerRules(state({ gatewayDeployment: liveGateway({ labelled: true, ready: true }) }))).toEqual([]);
  });

  it('upgrade: while the live gateway is not yet rolled out with the label, the ISTIO_MUTUAL DR for <name> stays', () => {
    for (const live of [liveGateway({ labelled: false, ready: true }), liveGateway({ labelled: true, ready: false })]) {
      const rules = callerRules(state({ gatewayDeployment: live }));
      expect(rules.map((r) => ({ name: r.metadata.name, spec: spec(r) }))).toEqual([
        { name: 'wpgw-in-legacy', spec: { host: LEGACY, trafficPolicy: { tls: { mode: 'ISTIO_MUTUAL' } } } },
      ]);
      // labelled like every other per-Service object, so prune and opt-out find it
      expect(rules[0]!.metadata.labels).toMatchObject({ 'app.kubernetes.io/managed-by': 'wpgw', 'wpgw.io/for': 'service.legacy' });
    }
  });
});
