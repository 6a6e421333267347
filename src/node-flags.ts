// The V8 flags the webhook and the controller run with: the image's ENTRYPOINT (Dockerfile) passes
// them to node, and the benchmarks and the e2e stack start the processes with the same flags
// (test/unit/node-flags.test.ts keeps the Dockerfile in line with this list).
//
// --max-semi-space-size=4: V8's young generation is sized for throughput (16 MiB semi-spaces on
// 64-bit), and a process that parses a cluster's lists and watch events touches all of it, so it
// stays in RSS. Loading the webhook and parsing 20,000 list items: 162 MiB RSS by default, 122 at
// 4 MiB, 118 at 2, 134 at 8. A smaller young generation means more scavenges on the admission
// path (typical pod, in-process: 29 per 20,000 admissions by default, 197 at 4 MiB, 423 at 2);
// 4 MiB keeps nearly all of the saving at half the scavenges of 2. bench/README.md, "Footprint".
const YOUNG_GENERATION_FLAG = '--max-semi-space-size=4';
// The webhook takes 8 MiB: admission is its hot path and allocates ~60 KiB per typical pod, so at 4
// MiB it scavenged every ~60 requests; with 8 a typical pod's capacity rose 0.66-0.71x -> 0.74-0.79x
// of the floor's and the 404 KiB pod's 0.47x -> 0.53x (14-round A/B runs, 2026-12-04), for ~3 MiB of
// RSS at the footprint's (c): 132.6 fresh / 138.1 running (bench/README.md, 2026-12-04 evening).
const WEBHOOK_YOUNG_GENERATION_FLAG = '--max-semi-space-size=8';

/**
 * What the image's ENTRYPOINT passes to node (its default command is the webhook).
 *
 * --heap-growing-percent=50: after each full GC V8 sets the next old-generation limit at up to 4x
 * the live heap when GC looks cheap, which it does while the webhook parses its start-up lists; a
 * webhook starting beside 50 x 20 opted-in apps reserved 74 MiB of heap for 37 in use and its RSS
 * peaked at 161-175 MiB. A fixed 1.5x step keeps the reserve to half the live heap: 45 MiB of heap,
 * peak 125 MiB; under saturating admission load the webhook peaked at 204 MiB instead of 339. The
 * price is more full GCs where requests are large: the 404 KiB pod's capacity fell from 0.62x to
 * 0.55x of the floor's; the typical pod's did not move (0.63x, 0.65x). 15% gave the same peak (126)
 * and cost the large pod 0.39x. A webhook that ran through the opt-in still peaks ~160 MiB: glibc's
 * main arena and old-generation garbage promoted under admission load. bench/README.md, "Footprint".
 */
export const SERVER_NODE_FLAGS: readonly string[] = [WEBHOOK_YOUNG_GENERATION_FLAG, '--heap-growing-percent=50'];

/**
 * The controller's Deployment `command` (manifests/controller.yaml and the chart) adds
 * --optimize-for-size instead: V8 then grows the heap in small steps and gives memory back, where
 * by default a controller converging 50 x 20 apps reserved twice the heap it used (95-160 MiB total
 * for 50-75 in use) and its RSS peaked at 232-306 MiB; with it, 179 (bench/README.md,
 * "Footprint"). Not the webhook: its admission CPU rose 25-40% with it (typical pod 0.74x -> 0.58x
 * of the floor's capacity), and admission is a latency path; the controller's reconciles are not.
 */
export const CONTROLLER_NODE_FLAGS: readonly string[] = [YOUNG_GENERATION_FLAG, '--optimize-for-size'];

/** The node flags a wpgw server command runs with. */
export function nodeFlagsFor(command: string): readonly string[] {
  return command === 'controller' ? CONTROLLER_NODE_FLAGS : SERVER_NODE_FLAGS;
}

/**
 * What the image runs: the bundle of the compiled CLI (build/bundle.ts), alone, with no
 * node_modules beside it. The e2e stack starts the same file from a copy laid out as the image.
 */
export const SERVER_ENTRY = 'dist/bundle/cli.js';
