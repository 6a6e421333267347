// Is a pod spec bound to Windows nodes? Delegates to the core's detection so the cache (which
// decides which Services get re-pointed) and the webhook (which injects pods) always agree.
import type { V1PodSpec } from '@kubernetes/client-node';
import { windowsEvidence } from '../core/detect.js';

export type RuntimeClassOSLookup = (runtimeClassName: string) => string | undefined;

/** spec.os.name, nodeSelector kubernetes.io/os, required node affinity os In [windows], or a Windows RuntimeClass. */
export function isWindowsPodSpec(
  spec: V1PodSpec | undefined,
  runtimeClassOS: RuntimeClassOSLookup = () => undefined,
): boolean {
  return windowsEvidence(spec, runtimeClassOS) !== undefined;
}

/** The pod template of a Deployment/StatefulSet/DaemonSet/ReplicaSet/Job/Rollout, or a CronJob's job template. */
export { podTemplateOf } from '../core/workloads.js';
