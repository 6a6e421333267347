// `wpgw webhook`: serve the mutating admission webhook.
//   --dev                  local: self-generated certificates in certs/, no cluster, a fixed
//                          gateway address (--gateway-ip); pods admitted earlier are remembered
//   --tls-cert-file/-key   certificates from files (e.g. cert-manager), hot reloaded
//   (default)              cluster: watch-backed caches from the kubeconfig in the environment,
//                          certificates in a Secret shared by replicas, caBundle kept current
import { admit } from '../core/admission.js';
import type { AdmissionHandler } from '../core/admission-types.js';
import type { AdmissionContext } from '../core/context.js';
import { checkApiServer, loadKubeConfig, registerCacheMetrics, startAdmissionCache } from '../cluster/index.js';
import { PLACEHOLDER_GATEWAY_IP } from '../defaults.js';
import { DEFAULT_CLUSTER_DOMAIN } from '../names.js';
import { devContext } from '../webhook/dev-context.js';
import { certPairFlags, durationFlag, intFlag, ipFlag, metricsPortFlag, parseCommand, UsageError } from './flags.js';
import { type CliIO, version } from './main.js';
import { createLogger, registerBuildInfo, serveMetrics, type MetricsServer } from '../telemetry/index.js';
import { webhookIdentity } from '../tls/index.js';
import { createMetrics, startWebhook, type WebhookTlsConfig } from '../webhook/index.js';

const HELP = `Usage: wpgw webhook [options]
  --dev                    run locally: certificates in ./certs, no cluster needed
  --gateway-ip IP          (--dev) the gateway address injected into pods (default ${PLACEHOLDER_GATEWAY_IP})
  --dns-ip IP              (--dev) the wpgw-dns address for dnsConfig mode (default 192.0.2.53)
  --host ADDR              listen address (default 0.0.0.0; 127.0.0.1 with --dev)
  --port N                 listen port (default 8443)
  --metrics-port N         also serve GET /metrics over plain HTTP on this port (the chart's
                           http-metrics, 9090; default: none; /metrics stays on the HTTPS port too)
  --tls-cert-file F        serve this certificate (PEM), reloaded when it changes
  --tls-key-file F         its private key
  --tls-reload-interval D  how often to look for new certificate files (default 10s)
  --tls-secret NS/NAME     Secret holding the shared CA and certificate (default wpgw-system/wpgw-webhook-tls)
  --webhook-config NAME    MutatingWebhookConfiguration whose caBundle to keep current (default wpgw; "" = none)
  --service-name NAME      the webhook Service, for certificate names (default wpgw-webhook)
  --service-namespace NS   its namespace (default wpgw-system)
  --cluster-domain D       (default ${DEFAULT_CLUSTER_DOMAIN})
  --cert-dir DIR           (--dev) where certificates live (default certs)
  --api-timeout D          how long to wait for the API server at start-up before exiting (default 30s)
`;

export async function webhookCommand(args: string[], io: CliIO): Promise<number> {
  const parsed = parseCommand(args, io, HELP, {
    dev: { type: 'boolean' },
    'gateway-ip': { type: 'string' },
    'dns-ip': { type: 'string' },
    host: { type: 'string' },
    port: { type: 'string' },
    'metrics-port': { type: 'string' },
    'tls-cert-file': { type: 'string' },
    'tls-key-file': { type: 'string' },
    'tls-reload-interval': { type: 'string' },
    'tls-secret': { type: 'string' },
    'webhook-config': { type: 'string' },
    'service-name': { type: 'string' },
    'service-namespace': { type: 'string' },
    'cluster-domain': { type: 'string' },
    'cert-dir': { type: 'string' },
    'api-timeout': { type: 'string' },
  });
  if (!parsed) return 0;
  const { values } = parsed;
  // Every flag is checked before anything starts: a bad one is a usage error, not a crash later.
  const port = intFlag('port', values.port, 8443, 0, 65535);
  const metricsPort = metricsPortFlag(values['metrics-port']);
  const files = certPairFlags('tls-cert-file', values['tls-cert-file'], 'tls-key-file', values['tls-key-file']);
  const pollIntervalMs = durationFlag('tls-reload-interval', values['tls-reload-interval'], '10s');
  const apiTimeoutMs = durationFlag('api-timeout', values['api-timeout'], '30s');
  const gatewayIP = ipFlag('gateway-ip', values['gateway-ip']) ?? PLACEHOLDER_GATEWAY_IP;
  const dnsIP = ipFlag('dns-ip', values['dns-ip']) ?? '192.0.2.53';
  const [secretNamespace, secretName, ...extra] = (
    values['tls-secret'] ?? `${values['service-namespace'] ?? 'wpgw-system'}/wpgw-webhook-tls`
  ).split('/');
  if (!secretNamespace || !secretName || extra.length > 0)
    throw new UsageError(`--tls-secret must be NAMESPACE/NAME, got "${values['tls-secret']}"`);
  if (!values.dev && (values['gateway-ip'] || values['dns-ip'] || values['cert-dir'])) {
    throw new UsageError(
      '--gateway-ip, --dns-ip and --cert-dir only apply with --dev (in a cluster the addresses come from the gateway Services)',
    );
  }
  const logger = createLogger();
  const clusterDomain = values['cluster-domain'] ?? DEFAULT_CLUSTER_DOMAIN;
  const serviceName = values['service-name'] ?? 'wpgw-webhook';
  const serviceNamespace = values['service-namespace'] ?? 'wpgw-system';
  const identity = webhookIdentity({
    service: serviceName,
    namespace: serviceNamespace,
    clusterDomain,
    extraNames: ['localhost', '127.0.0.1', '::1'],
  });

  const fileTls: WebhookTlsConfig = {
    mode: 'files',
    certFile: files.certFile ?? '',
    keyFile: files.keyFile ?? '',
    pollIntervalMs,
  };
  let context: AdmissionContext;
  let ready: () => boolean = () => true;
  let stopCache: () => Promise<void> = async () => {};
  let tls: WebhookTlsConfig;
  let remember: ((body: unknown, result: ReturnType<AdmissionHandler>) => void) | undefined;
  const metrics = createMetrics();
  registerBuildInfo(metrics.registry, 'webhook', version());

  if (values.dev) {
    const dev = devContext(gatewayIP, dnsIP);
    context = dev;
    remember = (body, result) => dev.remember(body, result);
    tls = files.certFile ? fileTls : { mode: 'dev', dir: values['cert-dir'] ?? 'certs', identity };
  } else {
    const kc = loadKubeConfig();
    await checkApiServer(kc, { timeoutMs: apiTimeoutMs });
    const { cache, context: cacheContext } = startAdmissionCache(kc, { logger });
    registerCacheMetrics(metrics.registry, cache);
    context = cacheContext;
    // Ready only once the caches hold a full list: answering from an empty cache would deny pods
    // for a "missing" gateway that exists.
    ready = () => cache.synced();
    stopCache = () => cache.stop();
    if (files.certFile) {
      tls = fileTls;
    } else {
      const configName = values['webhook-config'] ?? 'wpgw';
      tls = {
        mode: 'secret',
        kubeConfig: kc,
        namespace: secretNamespace,
        secretName,
        identity,
        webhookConfigName: configName === '' ? null : configName,
      };
    }
  }

  const handler: AdmissionHandler = (body) => {
    const result = admit(body, context, { clusterDomain });
    remember?.(body, result);
    return result;
  };
  const host = values.host ?? (values.dev ? '127.0.0.1' : '0.0.0.0');
  let running;
  let metricsServer: MetricsServer | undefined;
  try {
    running = await startWebhook({ handler, logger, tls, host, port, ready, metrics });
    if (metricsPort !== undefined)
      metricsServer = await serveMetrics({ registry: metrics.registry, host, port: metricsPort });
  } catch (err) {
    await running?.close();
    await stopCache();
    throw err;
  }
  logger.info(
    { address: running.address, metrics: metricsServer?.address, mode: values.dev ? 'dev' : 'cluster' },
    'wpgw webhook serving',
  );
  if (values.dev) {
    logger.info(
      `try: curl --cacert ${values['cert-dir'] ?? 'certs'}/ca.crt -H 'Content-Type: application/json' --data @examples/admission-review.json ${running.address}/mutate`,
    );
  }
  await waitForSignal();
  logger.info('shutting down');
  await metricsServer?.close();
  await running.close();
  await stopCache();
  return 0;
}

function waitForSignal(): Promise<void> {
  return new Promise((resolve) => {
    const done = () => resolve();
    process.once('SIGTERM', done);
    process.once('SIGINT', done);
  });
}
