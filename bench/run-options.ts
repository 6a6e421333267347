// `npm run bench` options (bench/run.ts): the command line read into one BenchConfig, and the
// targets the report checks. Reads nothing but the arguments and the machine's CPU count.
import { execFileSync } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { parseArgs } from 'node:util';
import { SERVER_NODE_FLAGS } from '../src/node-flags.js';

export const USAGE = `Usage: npm run bench -- [--quick] [--connections N] [--seconds S] [--rounds R] [--namespaces N] [--no-pin]
  --quick          ~45 s instead of ~3 min (2 rounds of 1 s slices)
  --connections N  keep-alive connections per run (default 10)
  --seconds S      length of one measured slice (default 1.5; quick 1)
  --rounds R       floor/wpgw alternations per payload (default 6; quick 2); the capacity
                   ratio is the median of the rounds' paired ratios
  --namespaces N   the large cache size (default 10000)
  --no-pin         do not pin servers to CPU 1 and the load generator to CPU 0
  --istiod         require the istiod row (fail if test/istio or test/harness is not built)
  --no-istiod      skip the istiod row (by default it runs when both are built)
  --node-flags F   node flags of the wpgw servers (default: src/node-flags.ts, as the image runs
                   them; the floor runs with Node's defaults)
`;

/** The report's targets (issue 15): capacity ratio and p99 ratio to the floor, the 100-destination pod's CPU, fixed-rate p99. */
// cacheFlatCpu: admission CPU on a 10,000- vs a 10-namespace cache, same requests ("flat in cluster size").
export const TARGET = { throughputRatio: 0.7, p99Ratio: 2, dest100CpuUs: 400, fixedP99Ms: 5, cacheFlatCpu: 1.1 };

export interface BenchConfig {
  quick: boolean;
  connections: number;
  /** Length of one measured slice, s. */
  sliceS: number;
  /** floor/wpgw alternations per payload. */
  rounds: number;
  warmupS: number;
  fixedS: number;
  fixedRate: number;
  largeNs: number;
  smallNs: number;
  cacheBodies: number;
  cpus: number;
  /** Servers on CPU 1, the load generator on CPU 0 (taskset). */
  pin: boolean;
  /** The istiod peer row: required, skipped, or run when test/istio and test/harness are built. */
  istiod: 'require' | 'skip' | 'auto';
  /** Node flags of the wpgw servers (the image's by default); the floor is any Node webhook, on defaults. */
  wpgwNodeFlags: string[];
}

export function hasTaskset(): boolean {
  try {
    execFileSync('taskset', ['-V'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** The configuration the arguments ask for, or 'help' for --help. */
export function parseBenchArgs(argv: string[]): BenchConfig | 'help' {
  const { values: args } = parseArgs({
    args: argv,
    options: {
      quick: { type: 'boolean' },
      connections: { type: 'string' },
      seconds: { type: 'string' },
      rounds: { type: 'string' },
      namespaces: { type: 'string' },
      'no-pin': { type: 'boolean' },
      istiod: { type: 'boolean' },
      'no-istiod': { type: 'boolean' },
      'node-flags': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (args.help) return 'help';
  const quick = args.quick === true;
  const cpus = availableParallelism();
  return {
    quick,
    connections: Number(args.connections ?? 10),
    // Many short alternations rather than a few long ones: the capacity ratio is the median of the
    // rounds' paired ratios, and six pairs outvote one or two slices the machine disturbed.
    sliceS: Number(args.seconds ?? (quick ? 1 : 1.5)),
    rounds: Number(args.rounds ?? (quick ? 2 : 6)),
    warmupS: quick ? 0.3 : 1,
    fixedS: quick ? 2 : 5,
    fixedRate: 1000,
    largeNs: Number(args.namespaces ?? 10_000),
    smallNs: 10,
    cacheBodies: 1000,
    cpus,
    pin: !args['no-pin'] && cpus >= 2 && hasTaskset(),
    istiod: args['no-istiod'] ? 'skip' : args.istiod ? 'require' : 'auto',
    wpgwNodeFlags:
      args['node-flags'] !== undefined ? args['node-flags'].split(' ').filter(Boolean) : [...SERVER_NODE_FLAGS],
  };
}
