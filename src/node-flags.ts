// The V8 flags the webhook and the controller run with: the image's ENTRYPOINT (Dockerfile) passes
// them to node, and the benchmarks and the e2e stack start the processes with the same flags
// (test/unit/node-flags.test.ts keeps the Dockerfile in line with this list).
//
// --max-semi-space-size=2: V8's young generation is sized for throughput (16 MiB semi-spaces on
// 64-bit), and a process that parses a cluster's lists and watch events touches all of it, so it
// stays in RSS: ~40-45 MiB of an idle webhook's ~160 MiB (bench/README.md, "Footprint"). At 2 MiB
// the scavenger runs more often on the admission path, which costs little (short-lived request
// garbage dies young either way; measured in `npm run bench`).
export const SERVER_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=2'];
