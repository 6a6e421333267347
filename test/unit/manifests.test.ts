// Static checks of what a platform team installs: manifests/ and the Dockerfile.
import { readFileSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { describe, expect, it } from 'vitest';

const ROOT = resolve(import.meta.dirname, '../..');
const docs = readdirSync(join(ROOT, 'manifests'))
  .filter((f) => f.endsWith('.yaml') && f !== 'kustomization.yaml')
  .flatMap((f) =>
    parseAllDocuments(readFileSync(join(ROOT, 'manifests', f), 'utf8')).map((d) => ({ file: f, obj: d.toJS() as any })),
  )
  .filter((d) => d.obj);
const ofKind = (kind: string) => docs.filter((d) => d.obj.kind === kind).map((d) => d.obj);

describe('manifests', () => {
  it('kustomization lists every manifest file', () => {
    const k = parseAllDocuments(readFileSync(join(ROOT, 'manifests/kustomization.yaml'), 'utf8'))[0]!.toJS() as {
      resources: string[];
    };
    expect([...new Set(docs.map((d) => d.file))].sort()).toEqual([...k.resources].sort());
  });

  it.each(['wpgw-webhook', 'wpgw-controller'])(
    '%s runs non-root, read-only, no capabilities, seccomp, Linux, with probes and resources',
    (name) => {
      const d = ofKind('Deployment').find((x) => x.metadata.name === name);
      const pod = d.spec.template.spec;
      expect(d.spec.replicas).toBe(2);
      expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } });
      expect(pod.securityContext.runAsUser).toBeGreaterThan(0);
      expect(pod.nodeSelector).toEqual({ 'kubernetes.io/os': 'linux' });
      for (const c of pod.containers) {
        expect(c.securityContext).toEqual({
          allowPrivilegeEscalation: false,
          readOnlyRootFilesystem: true,
          capabilities: { drop: ['ALL'] },
        });
        expect(c.readinessProbe.httpGet.scheme).toBe('HTTPS');
        expect(c.livenessProbe.httpGet.scheme).toBe('HTTPS');
        expect(c.resources.requests).toBeDefined();
        expect(c.resources.limits.memory).toBeDefined();
      }
      const pdb = ofKind('PodDisruptionBudget').find((x) => x.metadata.name === name);
      expect(pdb.spec.selector.matchLabels).toEqual(d.spec.selector.matchLabels);
    },
  );

  it('the MutatingWebhookConfiguration selects opted-in namespaces only and is safe to re-invoke', () => {
    const [mwc] = ofKind('MutatingWebhookConfiguration');
    expect(mwc.metadata.name).toBe('wpgw');
    expect(mwc.metadata.labels['app.kubernetes.io/managed-by']).toBe('wpgw');
    // The label the webhook checks before patching the caBundle (Helm overwrites managed-by).
    expect(mwc.metadata.labels['wpgw.io/ca-bundle']).toBe('webhook');
    // AKS's Admissions Enforcer leaves the namespaceSelector alone only with this opt-out.
    expect(mwc.metadata.annotations['admissions.enforcer/disabled']).toBe('true');
    for (const w of mwc.webhooks) {
      expect(w.namespaceSelector.matchLabels).toEqual({ 'wpgw.io/inject': 'enabled' });
      expect(w.namespaceSelector.matchExpressions).toContainEqual({
        key: 'kubernetes.io/metadata.name',
        operator: 'NotIn',
        values: ['wpgw-system', 'kube-system'],
      });
      expect(w).toMatchObject({
        sideEffects: 'None',
        admissionReviewVersions: ['v1'],
        reinvocationPolicy: 'IfNeeded',
        failurePolicy: 'Fail',
      });
      expect(w.timeoutSeconds).toBeLessThanOrEqual(10);
      expect(w.clientConfig.service).toMatchObject({ name: 'wpgw-webhook', namespace: 'wpgw-system', path: '/mutate' });
    }
    const pods = mwc.webhooks.find((w: any) => w.name === 'pods.wpgw.io');
    expect(pods.rules[0]).toMatchObject({ operations: ['CREATE'], resources: ['pods'] });
    // The gateway's own pods must come up with the webhook down (failurePolicy Fail).
    expect(pods.objectSelector.matchExpressions).toContainEqual({ key: 'wpgw.io/gateway', operator: 'DoesNotExist' });
  });

  it('RBAC has no wildcards, no cluster-wide Secret access, and names what it can', () => {
    for (const role of [...ofKind('ClusterRole'), ...ofKind('Role')]) {
      for (const rule of role.rules) {
        for (const field of ['apiGroups', 'resources', 'verbs']) expect(rule[field]).not.toContain('*');
        expect(rule.verbs).not.toContain('escalate');
        expect(rule.verbs).not.toContain('bind');
        expect(rule.verbs).not.toContain('impersonate');
      }
    }
    for (const role of ofKind('ClusterRole')) {
      expect(role.rules.some((r: any) => r.resources.includes('secrets'))).toBe(false);
    }
    const webhookMwc = ofKind('ClusterRole')
      .find((r) => r.metadata.name === 'wpgw-webhook')
      .rules.find((r: any) => r.resources.includes('mutatingwebhookconfigurations'));
    expect(webhookMwc.resourceNames).toEqual(['wpgw']);
  });

  it('the namespace enforces the restricted Pod Security Standard', () => {
    const [ns] = ofKind('Namespace');
    expect(ns.metadata.labels['pod-security.kubernetes.io/enforce']).toBe('restricted');
  });
});

describe('Dockerfile', () => {
  const text = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');
  it('is multi-stage on Node 24, runs non-root, and builds with the npm build script', () => {
    const froms = text.match(/^FROM .*/gm) ?? [];
    expect(froms.length).toBeGreaterThanOrEqual(2);
    expect(froms.every((f) => f.includes('node:24'))).toBe(true);
    // The bundle (build/bundle.ts) is made by the same script as everywhere else.
    expect(text).toMatch(/^RUN npm run build$/m);
    const user = /^USER (\d+)/m.exec(text);
    expect(Number(user?.[1])).toBeGreaterThan(0);
  });
});
