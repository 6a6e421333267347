#!/usr/bin/env node
// wpgw command line entry. It only checks the Node.js version and then loads the commands: the
// check must run before any dependency is imported, and static imports would load them first.
import { nodeVersionProblem } from './node-version.js';

const problem = nodeVersionProblem(process.versions.node);
if (problem) {
  process.stderr.write(`${problem}\n`);
  process.exit(1);
}
const { runCli } = await import('./commands/main.js');
process.exit(await runCli(process.argv.slice(2)));
