import { describe, expect, it } from 'vitest';
import type { V1PodSpec } from '@kubernetes/client-node';
import { isHostProcess, windowsEvidence } from '../../src/core/detect.js';

const base: V1PodSpec = { containers: [{ name: 'app', image: 'app' }] };
const rc = (n: string) => ({ 'windows-2022': 'windows', gvisor: 'linux' })[n];

describe('Windows detection', () => {
  it('finds each kind of evidence', () => {
    expect(windowsEvidence({ ...base, os: { name: 'windows' } }, rc)).toBe('spec.os.name');
    expect(windowsEvidence({ ...base, nodeSelector: { 'kubernetes.io/os': 'windows' } }, rc)).toBe('nodeSelector');
    expect(windowsEvidence({ ...base, runtimeClassName: 'windows-2022' }, rc)).toBe('runtimeClass');
    const affinity = (values: string[], op = 'In') => ({
      nodeAffinity: {
        requiredDuringSchedulingIgnoredDuringExecution: {
          nodeSelectorTerms: [{ matchExpressions: [{ key: 'kubernetes.io/os', operator: op, values }] }],
        },
      },
    });
    expect(windowsEvidence({ ...base, affinity: affinity(['windows']) }, rc)).toBe('nodeAffinity');
    expect(windowsEvidence({ ...base, affinity: affinity(['windows', 'linux']) }, rc)).toBeUndefined();
    expect(windowsEvidence({ ...base, affinity: affinity(['windows'], 'NotIn') }, rc)).toBeUndefined();
  });

  it('requires every ORed affinity term to pin Windows', () => {
    const spec: V1PodSpec = {
      ...base,
      affinity: {
        nodeAffinity: {
          requiredDuringSchedulingIgnoredDuringExecution: {
            nodeSelectorTerms: [
              { matchExpressions: [{ key: 'kubernetes.io/os', operator: 'In', values: ['windows'] }] },
              { matchExpressions: [{ key: 'zone', operator: 'In', values: ['a'] }] },
            ],
          },
        },
      },
    };
    expect(windowsEvidence(spec, rc)).toBeUndefined();
  });

  it('ignores Linux pods and unknown runtime classes', () => {
    expect(windowsEvidence(base, rc)).toBeUndefined();
    expect(windowsEvidence({ ...base, nodeSelector: { 'kubernetes.io/os': 'linux' } }, rc)).toBeUndefined();
    expect(windowsEvidence({ ...base, runtimeClassName: 'gvisor' }, rc)).toBeUndefined();
    expect(windowsEvidence({ ...base, runtimeClassName: 'missing' }, rc)).toBeUndefined();
    expect(windowsEvidence(undefined, rc)).toBeUndefined();
  });

  it('spots HostProcess at pod and container level', () => {
    expect(isHostProcess({ ...base, securityContext: { windowsOptions: { hostProcess: true } } })).toBe(true);
    expect(
      isHostProcess({ containers: [{ name: 'a', securityContext: { windowsOptions: { hostProcess: true } } }] }),
    ).toBe(true);
    expect(isHostProcess(base)).toBe(false);
  });
});
