#!/usr/bin/env node
// wpgw command line: one binary for the webhook, the controller and the offline tools.
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { render } from './render.js';

const USAGE = `wpgw - Windows workloads in an Istio mesh through a per-namespace waypoint gateway

Usage:
  wpgw webhook [--dev] [--gateway-ip IP] [--port 8443] [--host ADDR] [TLS options]
                                   serve the mutating admission webhook (HTTPS)
  wpgw controller [--namespace wpgw-system]
                                   run the companion controller (kubeconfig from the environment)
  wpgw render -f FILE|- [--gateway-ip IP] [--dns-ip IP] [-n NAMESPACE]
                                   print the objects as admitted plus what the controller creates
  wpgw status [-n NAMESPACE]       per opted-in namespace: gateway, re-pointed Services, destinations, drift
  wpgw help                        this text

Run "wpgw <command> --help" for the options of a command.`;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'render':
      return renderCommand(rest);
    case 'webhook':
      return (await import('./commands/webhook.js')).webhookCommand(rest);
    case 'controller':
      return (await import('./commands/controller.js')).controllerCommand(rest);
    case 'status':
      return (await import('./commands/status.js')).statusCommand(rest);
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(`${USAGE}\n`);
      return command === undefined ? 2 : 0;
    default:
      process.stderr.write(`wpgw: unknown command "${command}"\n\n${USAGE}\n`);
      return 2;
  }
}

function renderCommand(args: string[]): number {
  const { values } = parseArgs({
    args,
    options: {
      file: { type: 'string', short: 'f' },
      'gateway-ip': { type: 'string' },
      'dns-ip': { type: 'string' },
      'cluster-dns-ip': { type: 'string' },
      namespace: { type: 'string', short: 'n' },
      'cluster-domain': { type: 'string' },
      quiet: { type: 'boolean', short: 'q' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (values.help || !values.file) {
    process.stderr.write(
      'Usage: wpgw render -f FILE|- [--gateway-ip IP] [--dns-ip IP] [--cluster-dns-ip IP] [-n NAMESPACE] [--cluster-domain D] [-q]\n' +
        'Reads a multi-document YAML stream; prints every object as the webhook would admit it, then every\n' +
        'object the controller creates for those namespaces (each namespace in the input counts as opted in).\n' +
        'What it did goes to stderr (-q silences it).\n',
    );
    return values.help ? 0 : 2;
  }
  const text = values.file === '-' ? readFileSync(0, 'utf8') : readFileSync(values.file, 'utf8');
  const result = render(text, {
    ...(values['gateway-ip'] ? { gatewayIP: values['gateway-ip'] } : {}),
    ...(values['dns-ip'] ? { dnsIP: values['dns-ip'] } : {}),
    ...(values['cluster-dns-ip'] ? { clusterDnsIP: values['cluster-dns-ip'] } : {}),
    ...(values.namespace ? { defaultNamespace: values.namespace } : {}),
    ...(values['cluster-domain'] ? { clusterDomain: values['cluster-domain'] } : {}),
  });
  if (result.errors.length > 0) {
    for (const e of result.errors) process.stderr.write(`error: ${e}\n`);
    return 1;
  }
  if (!values.quiet) for (const line of result.report) process.stderr.write(`# ${line}\n`);
  process.stdout.write(result.yaml);
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code !== 0) process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`wpgw: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  },
);
