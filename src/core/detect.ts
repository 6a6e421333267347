// Is this pod (spec) a Windows pod? Neither Istio's nor Linkerd's injector asks; we must.
import type { V1PodSpec } from '@kubernetes/client-node';
import { OS_LABEL } from '../names.js';

export type WindowsEvidence = 'spec.os.name' | 'nodeSelector' | 'nodeAffinity' | 'runtimeClass';

/**
 * Returns how the pod is known to be Windows, or undefined. `runtimeClassOS` maps a
 * RuntimeClass name to the OS its scheduling node selector pins (from a cache, or the input YAML).
 */
export function windowsEvidence(
  spec: V1PodSpec | undefined,
  runtimeClassOS: (name: string) => string | undefined,
): WindowsEvidence | undefined {
  if (!spec) return undefined;
  if (spec.os?.name === 'windows') return 'spec.os.name';
  if (spec.nodeSelector?.[OS_LABEL] === 'windows') return 'nodeSelector';
  if (requiredAffinityIsWindows(spec)) return 'nodeAffinity';
  if (spec.runtimeClassName && runtimeClassOS(spec.runtimeClassName) === 'windows') return 'runtimeClass';
  return undefined;
}

// Required affinity pins Windows only if every term (terms are ORed) demands os In [windows].
function requiredAffinityIsWindows(spec: V1PodSpec): boolean {
  const terms = spec.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution?.nodeSelectorTerms;
  if (!terms || terms.length === 0) return false;
  return terms.every((term) =>
    (term.matchExpressions ?? []).some(
      (e) =>
        e.key === OS_LABEL &&
        e.operator === 'In' &&
        (e.values ?? []).length > 0 &&
        (e.values ?? []).every((v) => v === 'windows'),
    ),
  );
}

/** HostProcess containers share the node's network; hostAliases do not reach the node's hosts file. */
export function isHostProcess(spec: V1PodSpec): boolean {
  if (spec.securityContext?.windowsOptions?.hostProcess) return true;
  return [...(spec.initContainers ?? []), ...spec.containers].some(
    (c) => c.securityContext?.windowsOptions?.hostProcess === true,
  );
}
