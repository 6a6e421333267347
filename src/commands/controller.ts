// `wpgw controller`: the companion controller. Kubeconfig from the environment (KUBECONFIG, or
// in-cluster), so the same binary runs in a cluster, on a laptop, or under the e2e suite.
import { isIP } from 'node:net';
import { hostname } from 'node:os';
import { checkApiServer, loadKubeConfig } from '../cluster/index.js';
import { startController } from '../controller/index.js';
import { serveControllerEndpoint } from '../controller/serve.js';
import { serverLookup } from '../controller/resolver.js';
import { MAX_GATEWAY_REPLICAS } from '../core/desired/gateway.js';
import { DEFAULT_DESIRED_OPTIONS } from '../defaults.js';
import { DEFAULT_CLUSTER_DOMAIN } from '../names.js';
import {
  booleanFlag,
  certPairFlags,
  cidrListFlag,
  durationFlag,
  intFlag,
  metricsPortFlag,
  namespaceFlag,
  parseCommand,
  revisionFlag,
  UsageError,
} from './flags.js';
import { type CliIO, version } from './main.js';
import { createLogger, createRegistry, registerBuildInfo, serveMetrics } from '../telemetry/index.js';

const HELP = `Usage: wpgw controller [options]
  --namespace NS            where the controller runs and keeps its Lease (default $POD_NAMESPACE or wpgw-system)
  --host ADDR --port N      HTTPS /healthz /readyz /metrics (default 0.0.0.0:9443; --port 0 picks one)
  --metrics-port N          also serve GET /metrics over plain HTTP on this port (the chart's
                            http-metrics, 9090; default: none)
  --tls-cert-file/-key-file serve this certificate instead of a self-signed one
  --no-leader-election      act as the only writer (single replica, tests)
  --resync DURATION         reconcile every opted-in namespace this often (default 5m)
  --gateway-replicas N      default gateway replicas per namespace (default 2)
  --coredns-image IMAGE     image for wpgw-dns (dnsConfig mode)
  --istio-revision REV      Istio revision or tag whose injector injects the gateway pods (istio.io/rev;
                            a namespace's wpgw.io/istio-revision or istio.io/rev wins; default: none,
                            Istio's default revision)
  --cluster-domain D        (default ${DEFAULT_CLUSTER_DOMAIN})
  --cluster-cidrs LIST      the cluster's pod, Service and node CIDRs, comma separated: the gateways never
                            reach them for external destinations (private ranges are refused anyway;
                            name public ones here; the kubernetes Service address, ServiceCIDRs and, with
                            --discover-node-ranges, Nodes' pod CIDRs and addresses are found by themselves)
  --discover-node-ranges B  true (default): watch Nodes (RBAC list/watch nodes) for their pod CIDRs and
                            InternalIP/ExternalIP; false: no Node watch, name those ranges in --cluster-cidrs
  --external-names MODE     pin (default): the controller resolves declared external names, refuses any
                            that resolve to link-local, loopback, metadata, private or cluster addresses,
                            and pins the gateways to the checked addresses (ServiceEntry STATIC);
                            gateway: the gateways resolve them (resolution DNS; NetworkPolicy only)
  --external-dns-server A   with pin: resolve with this DNS server (IP or IP:port) instead of the
                            system resolver (a controller that does not share the gateways' DNS)
  --istio-namespace NS      where istiod runs: the gateways' egress policy lets them reach its
                            app=istiod pods on 15012 (default istio-system)
  --istio-root-namespace NS Istio's root namespace (meshConfig.rootNamespace), whose policies are
                            mesh-wide and reported where they act on the gateways (default: --istio-namespace)
  --api-timeout D           how long to wait for the API server at start-up before exiting (default 30s)
`;

export async function controllerCommand(args: string[], io: CliIO): Promise<number> {
  const parsed = parseCommand(args, io, HELP, {
    namespace: { type: 'string' },
    host: { type: 'string' },
    port: { type: 'string' },
    'metrics-port': { type: 'string' },
    'tls-cert-file': { type: 'string' },
    'tls-key-file': { type: 'string' },
    'no-leader-election': { type: 'boolean' },
    resync: { type: 'string' },
    'gateway-replicas': { type: 'string' },
    'coredns-image': { type: 'string' },
    'istio-revision': { type: 'string' },
    'cluster-domain': { type: 'string' },
    'cluster-cidrs': { type: 'string' },
    'discover-node-ranges': { type: 'string' },
    'istio-namespace': { type: 'string' },
    'istio-root-namespace': { type: 'string' },
    'external-names': { type: 'string' },
    'external-dns-server': { type: 'string' },
    'api-timeout': { type: 'string' },
  });
  if (!parsed) return 0;
  const { values } = parsed;
  // Every flag is checked before anything starts: a bad one is a usage error, not a crash later.
  const replicas = intFlag(
    'gateway-replicas',
    values['gateway-replicas'],
    DEFAULT_DESIRED_OPTIONS.defaultGatewayReplicas,
    1,
    MAX_GATEWAY_REPLICAS,
  );
  const resyncIntervalMs = durationFlag('resync', values.resync, '5m');
  const apiTimeoutMs = durationFlag('api-timeout', values['api-timeout'], '30s');
  const port = intFlag('port', values.port, 9443, 0, 65535);
  const metricsPort = metricsPortFlag(values['metrics-port']);
  const istioRevision = revisionFlag('istio-revision', values['istio-revision']);
  const clusterCIDRs = cidrListFlag('cluster-cidrs', values['cluster-cidrs']);
  const discoverNodeRanges = booleanFlag('discover-node-ranges', values['discover-node-ranges'], true);
  const istioNamespace = namespaceFlag('istio-namespace', values['istio-namespace']);
  const istioRootNamespace = namespaceFlag('istio-root-namespace', values['istio-root-namespace']);
  const externalNames = values['external-names'] ?? 'pin';
  if (externalNames !== 'pin' && externalNames !== 'gateway')
    throw new UsageError(`--external-names must be pin or gateway, got "${externalNames}"`);
  const dnsServer = values['external-dns-server'];
  if (dnsServer !== undefined && isIP(dnsServer.replace(/:\d+$/, '')) === 0 && isIP(dnsServer) === 0)
    throw new UsageError(`--external-dns-server must be an IP address or IP:port, got "${dnsServer}"`);
  const files = certPairFlags('tls-cert-file', values['tls-cert-file'], 'tls-key-file', values['tls-key-file']);
  const kubeconfig = loadKubeConfig();
  await checkApiServer(kubeconfig, { timeoutMs: apiTimeoutMs });

  const logger = createLogger();
  const registry = createRegistry({ defaultMetrics: true });
  registerBuildInfo(registry, 'controller', version());
  // Listen first: a port that cannot be bound ends the process before any watch or Lease starts.
  let controller: ReturnType<typeof startController> | undefined;
  const endpoint = await serveControllerEndpoint({
    registry,
    ready: () => controller?.ready() ?? false,
    host: values.host ?? '0.0.0.0',
    port,
    ...files,
  });
  const metricsServer =
    metricsPort === undefined
      ? undefined
      : await serveMetrics({ registry, host: values.host ?? '0.0.0.0', port: metricsPort });
  controller = startController({
    kubeconfig,
    namespace: values.namespace ?? process.env.POD_NAMESPACE ?? 'wpgw-system',
    logger,
    registry,
    options: {
      leaderElection: !values['no-leader-election'],
      identity: process.env.POD_NAME ?? hostname(),
      resyncIntervalMs,
      externalNames,
      discoverNodeRanges,
      ...(dnsServer ? { lookup: serverLookup(dnsServer) } : {}),
      desired: {
        defaultGatewayReplicas: replicas,
        clusterDomain: values['cluster-domain'] ?? DEFAULT_CLUSTER_DOMAIN,
        ...(values['coredns-image'] ? { corednsImage: values['coredns-image'] } : {}),
        ...(istioRevision ? { istioRevision } : {}),
        ...(clusterCIDRs.length > 0 ? { clusterCIDRs } : {}),
        ...(istioNamespace ? { istioNamespace } : {}),
        ...(istioRootNamespace ? { istioRootNamespace } : {}),
      },
    },
  });
  logger.info({ address: endpoint.address, metrics: metricsServer?.address }, 'wpgw controller running');
  await new Promise<void>((resolve) => {
    process.once('SIGTERM', resolve);
    process.once('SIGINT', resolve);
  });
  logger.info('shutting down');
  await controller.stop();
  await metricsServer?.close();
  await endpoint.app.close();
  return 0;
}
