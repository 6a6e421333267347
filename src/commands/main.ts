// wpgw commands: one binary for the webhook, the controller and the offline tools. Every usage
// error exits 2 with one line; every other failure exits 1 with one line (StartupError and the
// like carry the whole story); help goes to stdout.
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isUsageError, USAGE_EXIT } from './flags.js';

export const USAGE = `wpgw - Windows workloads in an Istio mesh through a per-namespace waypoint gateway

Usage:
  wpgw webhook [--dev] [--gateway-ip IP] [--port 8443] [--host ADDR] [TLS options]
                                   serve the mutating admission webhook (HTTPS)
  wpgw controller [--namespace wpgw-system]
                                   run the companion controller (kubeconfig from the environment)
  wpgw render -f FILE|DIR|- [--gateway-ip IP] [--dns-ip IP] [-n NAMESPACE] [-o yaml|json]
                                   print the objects as admitted plus what the controller creates
  wpgw status [-n NAMESPACE] [-o text|json|yaml]
                                   per opted-in namespace: gateway, re-pointed Services, destinations, drift
  wpgw suggest [-n NAMESPACE] [--since 1h]
                                   per managed workload: names its pods resolved that no entry covers, the entry to paste
  wpgw restore (-n NAMESPACE | --all) [--roll]
                                   hand namespaces back without the controller: Services, pods, objects
  wpgw check [--pre] [-n NAMESPACE] [-o table|json] [--wait D]
                                   is the cluster ready (--pre), is wpgw working? each check with a hint
  wpgw check-inject POD -n NAMESPACE | -f FILE
                                   which webhooks a pod meets, and what wpgw and Istio do to it (dry run)
  wpgw uninstall [--dry-run] [--force] [--keep-install]
                                   opt every namespace out, wait until handed back, remove wpgw
  wpgw help [COMMAND]              this text, or a command's options
  wpgw --version                   the version

Global options (anywhere on the line, as kubectl's; so "kubectl wpgw ..." works the same):
  --kubeconfig FILE                the kubeconfig (default: $KUBECONFIG, ~/.kube/config, in-cluster)
  --context NAME                   a context of that kubeconfig

Run "wpgw <command> --help" for the options of a command.`;

type Command = (args: string[], io: CliIO) => Promise<number> | number;

export interface CliIO {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
}

const PROCESS_IO: CliIO = { stdout: (t) => process.stdout.write(t), stderr: (t) => process.stderr.write(t) };

// Loaded on demand: `wpgw render` needs no cluster client, `wpgw status` no web server.
const COMMANDS: Record<string, () => Promise<Command>> = {
  webhook: async () => (await import('./webhook.js')).webhookCommand,
  controller: async () => (await import('./controller.js')).controllerCommand,
  render: async () => (await import('./render.js')).renderCommand,
  status: async () => (await import('./status.js')).statusCommand,
  restore: async () => (await import('./restore.js')).restoreCommand,
  suggest: async () => (await import('./suggest.js')).suggestCommand,
  check: async () => (await import('./check.js')).checkCommand,
  'check-inject': async () => (await import('./check-inject.js')).checkInjectCommand,
  uninstall: async () => (await import('./uninstall.js')).uninstallCommand,
};

/** The version in wpgw's package.json: the nearest one up from this module (src/ in tests, dist/src/ built). */
export function version(): string {
  for (let dir = dirname(fileURLToPath(import.meta.url)); ; dir = dirname(dir)) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'wpgw' && pkg.version) return pkg.version;
    } catch {
      // not here: look one level up
    }
    if (dirname(dir) === dir) return 'unknown';
  }
}

/**
 * Takes kubectl's global --kubeconfig and --context out of the arguments, wherever they are:
 * kubectl hands a plugin its whole command line. Returns the rest, or a usage message.
 */
export function takeGlobalFlags(argv: string[]): { rest: string[]; kubeconfig?: string; context?: string } | string {
  const rest: string[] = [];
  const found: { kubeconfig?: string; context?: string } = {};
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') {
      rest.push(...argv.slice(i));
      break;
    }
    const m = /^--(kubeconfig|context)(?:=(.*))?$/.exec(arg);
    if (!m) {
      rest.push(arg);
      continue;
    }
    const value = m[2] ?? argv[++i];
    if (value === undefined || value === '') return `--${m[1]} needs a value`;
    found[m[1] as 'kubeconfig' | 'context'] = value;
  }
  return { rest, ...found };
}

export async function runCli(argv: string[], io: CliIO = PROCESS_IO): Promise<number> {
  const globals = takeGlobalFlags(argv);
  if (typeof globals === 'string') {
    io.stderr(`wpgw: ${globals}\n`);
    return USAGE_EXIT;
  }
  const savedKubeconfig = process.env.KUBECONFIG;
  if (globals.kubeconfig) process.env.KUBECONFIG = globals.kubeconfig;
  // Loaded only when used: `wpgw render` never loads the cluster client.
  const preflight = globals.context ? await import('../cluster/preflight.js') : undefined;
  preflight?.useKubeContext(globals.context);
  try {
    return await dispatch(globals.rest, io);
  } finally {
    // runCli may run more than once in a process (tests): the flags hold for this run only.
    preflight?.useKubeContext(undefined);
    if (globals.kubeconfig) {
      if (savedKubeconfig === undefined) delete process.env.KUBECONFIG;
      else process.env.KUBECONFIG = savedKubeconfig;
    }
  }
}

async function dispatch(argv: string[], io: CliIO): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined) {
    io.stderr(`${USAGE}\n`);
    return USAGE_EXIT;
  }
  if (command === '--version' || command === 'version') {
    io.stdout(`wpgw ${version()}\n`);
    return 0;
  }
  if (command === 'help' || command === '--help' || command === '-h') {
    const topic = rest[0];
    if (topic === undefined) {
      io.stdout(`${USAGE}\n`);
      return 0;
    }
    return run(topic, ['--help'], io);
  }
  return run(command, rest, io);
}

async function run(name: string, args: string[], io: CliIO): Promise<number> {
  const load = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
  if (!load) {
    io.stderr(`wpgw: unknown command "${name}"\n\n${USAGE}\n`);
    return USAGE_EXIT;
  }
  try {
    return await (
      await load()
    )(args, io);
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    if (isUsageError(err)) {
      io.stderr(`wpgw ${name}: ${message}\nRun "wpgw ${name} --help" for its options.\n`);
      return USAGE_EXIT;
    }
    io.stderr(`wpgw ${name}: ${message}\n`);
    return 1;
  }
}
