// An injected `istio-proxy` container run for real: Istio's pilot-agent with the container's own
// args and env (as Istio's injector rendered them), Envoy inside the pod's network namespace.
//
// pilot-agent runs outside the pod namespace (it reaches istiod on 127.0.0.1) in a per-pod working
// directory, where the pod's volumes live under the same relative paths the agent uses in a
// container (./etc/istio/proxy, ./var/run/secrets/...). Envoy talks to the agent only over Unix
// sockets in that directory (xDS proxy ./etc/istio/proxy/XDS, SDS
// ./var/run/secrets/workload-spiffe-uds/socket), and filesystem sockets cross network namespaces,
// so binaryPath is a wrapper that execs Envoy under `ip netns exec <pod netns>`.
//
// What differs from a pod, and why: discoveryAddress/CA_ADDR point at the local istiod; the agent's
// status and Envoy admin ports are unique per pod (the agents share the host's network namespace);
// root-cert.pem is the CA of istiod's serving certificate (test/istio/start.sh's own CA); the agent
// gets a private mount namespace with the pod's "system" CA bundle bind-mounted (the trust store
// istiod's DestinationRules without caCertificates refer to, read by the agent's SDS server).
import type { V1Container, V1Pod } from '@kubernetes/client-node';
import { chmodSync, copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startProc, type Proc } from './procs.js';
import { expandVars } from './pod-env.js';

export interface ProxySettings {
  agent: string;
  envoy: string;
  /** istiod's TLS xDS/CA address (host:port on 127.0.0.1) */
  discoveryAddress: string;
  /** CA that signed istiod's serving certificate */
  istiodCA: string;
  /** Envoy bootstrap template from the istio.io/istio module (tools/packaging/common/envoy_bootstrap.json) */
  bootstrapTemplate: string;
  /** PEM bundle the pod sees as /etc/ssl/certs/ca-certificates.crt */
  systemCA: string;
  netns: string;
  dir: string;
  adminPort: number;
  statusPort: number;
  logLevel?: string;
}

/** Downward API file format: key="value" lines, values Go-quoted (JSON quoting is the same for these). */
const downward = (m: Record<string, string> | undefined) =>
  Object.entries(m ?? {})
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([k, v]) => `${k}=${JSON.stringify(v)}`)
    .join('\n');

export async function startProxy(
  pod: V1Pod,
  c: V1Container,
  env: Record<string, string>,
  token: string,
  s: ProxySettings,
): Promise<Proc> {
  const d = s.dir;
  for (const sub of [
    'certs',
    'etc/istio/proxy',
    'etc/istio/pod',
    'var/run/secrets/tokens',
    'var/run/secrets/istio',
    'var/run/secrets/workload-spiffe-uds',
    'var/run/secrets/workload-spiffe-credentials',
    'var/run/secrets/credential-uds',
    'var/lib/istio/data',
    'var/lib/istio/envoy',
  ]) {
    mkdirSync(join(d, sub), { recursive: true });
  }
  writeFileSync(join(d, 'var/run/secrets/tokens/istio-token'), token, { mode: 0o600 });
  copyFileSync(s.istiodCA, join(d, 'var/run/secrets/istio/root-cert.pem'));
  copyFileSync(s.bootstrapTemplate, join(d, 'var/lib/istio/envoy/envoy_bootstrap_tmpl.json'));
  writeFileSync(join(d, 'etc/istio/pod/labels'), downward(pod.metadata?.labels));
  writeFileSync(join(d, 'etc/istio/pod/annotations'), downward(pod.metadata?.annotations));
  const wrapper = join(d, 'envoy-in-pod');
  writeFileSync(
    wrapper,
    `#!/bin/sh\n# Envoy inside the pod's network namespace (pilot-agent stays outside)\nexec ip netns exec ${s.netns} ${s.envoy} "$@"\n`,
  );
  chmodSync(wrapper, 0o755);

  const proxyConfig = {
    ...(env.PROXY_CONFIG ? (JSON.parse(env.PROXY_CONFIG) as Record<string, unknown>) : {}),
    discoveryAddress: s.discoveryAddress,
    binaryPath: wrapper,
    configPath: './etc/istio/proxy',
    proxyAdminPort: s.adminPort,
    statusPort: s.statusPort,
    concurrency: 1,
    drainDuration: '1s',
    terminationDrainDuration: '1s',
  };
  const agentEnv: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: d,
    ...env,
    PROXY_CONFIG: JSON.stringify(proxyConfig),
    CA_ADDR: s.discoveryAddress,
    CLOUD_PLATFORM: 'none', // no cloud metadata probe
    OUTPUT_CERTS: join(d, 'certs'), // the workload certificate, for the suite to read identities
  };
  // args as injected, with the two flags that name host resources made per pod
  const args = (c.args ?? []).map((a) =>
    expandVars(a, env).replace(/^--statusPort=\d+$/, `--statusPort=${s.statusPort}`),
  );
  if (s.logLevel) args.push(`--proxyLogLevel=${s.logLevel}`);
  return startProc(
    `${pod.metadata!.namespace}/${pod.metadata!.name}/istio-proxy`,
    'unshare',
    [
      '-m',
      '--propagation',
      'private',
      'sh',
      '-c',
      'mount --bind "$0" /etc/ssl/certs/ca-certificates.crt && exec "$@"',
      s.systemCA,
      s.agent,
      ...args,
    ],
    { log: join(d, '..', 'istio-proxy.log'), env: agentEnv, cwd: d },
  );
}
