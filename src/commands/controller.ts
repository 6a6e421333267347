// `wpgw controller`: the companion controller. Kubeconfig from the environment (KUBECONFIG, or
// in-cluster), so the same binary runs in a cluster, on a laptop, or under the e2e suite.
import { hostname } from 'node:os';
import { parseArgs } from 'node:util';
import { loadKubeConfig } from '../cluster/index.js';
import { startController } from '../controller/index.js';
import { serveControllerEndpoint } from '../controller/serve.js';
import { DEFAULT_CLUSTER_DOMAIN } from '../names.js';
import { parseDuration } from './duration.js';
import { createLogger, createRegistry } from '../webhook/index.js';

const HELP = `Usage: wpgw controller [options]
  --namespace NS            where the controller runs and keeps its Lease (default $POD_NAMESPACE or wpgw-system)
  --host ADDR --port N      HTTPS /healthz /readyz /metrics (default 0.0.0.0:9443; --port 0 picks one)
  --tls-cert-file/-key-file serve this certificate instead of a self-signed one
  --no-leader-election      act as the only writer (single replica, tests)
  --resync DURATION         reconcile every opted-in namespace this often (default 5m)
  --gateway-replicas N      default gateway replicas per namespace (default 2)
  --coredns-image IMAGE     image for wpgw-dns (dnsConfig mode)
  --cluster-domain D        (default ${DEFAULT_CLUSTER_DOMAIN})
`;

export async function controllerCommand(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    strict: true,
    options: {
      namespace: { type: 'string' },
      host: { type: 'string' },
      port: { type: 'string' },
      'tls-cert-file': { type: 'string' },
      'tls-key-file': { type: 'string' },
      'no-leader-election': { type: 'boolean' },
      resync: { type: 'string' },
      'gateway-replicas': { type: 'string' },
      'coredns-image': { type: 'string' },
      'cluster-domain': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  const logger = createLogger();
  const registry = createRegistry({ defaultMetrics: true });
  const replicas = Number(values['gateway-replicas'] ?? 2);
  if (!Number.isInteger(replicas) || replicas < 1) throw new Error(`--gateway-replicas must be a positive whole number, got ${values['gateway-replicas']}`);
  const resyncIntervalMs = parseDuration(values.resync ?? '5m');
  const controller = startController({
    kubeconfig: loadKubeConfig(),
    namespace: values.namespace ?? process.env.POD_NAMESPACE ?? 'wpgw-system',
    logger,
    registry,
    options: {
      leaderElection: !values['no-leader-election'],
      identity: process.env.POD_NAME ?? hostname(),
      resyncIntervalMs,
      desired: {
        defaultGatewayReplicas: replicas,
        clusterDomain: values['cluster-domain'] ?? DEFAULT_CLUSTER_DOMAIN,
        ...(values['coredns-image'] ? { corednsImage: values['coredns-image'] } : {}),
      },
    },
  });
  const endpoint = await serveControllerEndpoint({
    registry,
    ready: () => controller.ready(),
    host: values.host ?? '0.0.0.0',
    port: Number(values.port ?? 9443),
    ...(values['tls-cert-file'] ? { certFile: values['tls-cert-file'] } : {}),
    ...(values['tls-key-file'] ? { keyFile: values['tls-key-file'] } : {}),
  });
  logger.info({ address: endpoint.address }, 'wpgw controller running');
  await new Promise<void>((resolve) => {
    process.once('SIGTERM', resolve);
    process.once('SIGINT', resolve);
  });
  logger.info('shutting down');
  await controller.stop();
  await endpoint.app.close();
  return 0;
}
