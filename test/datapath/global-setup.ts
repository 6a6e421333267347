// The data-path project's global setup: the same wpgw stack as the e2e project (harness cluster,
// wpgw webhook and controller as real processes), in its own state dir so both can run in one go.
import { join, resolve } from 'node:path';
import type { TestProject } from 'vitest/node';
import setupStack from '../e2e/global-setup.js';

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  process.env.WPGW_E2E_STATE_DIR ??= join(resolve(import.meta.dirname, '../..'), '.e2e-state', 'datapath');
  // The data path's "external" test host is a pod of the harness (its address in a node's
  // podCIDR), which node discovery rightly counts as the cluster's own and refuses; so here the
  // controller does not watch Nodes. The e2e suite proves the discovery (wpgw.test.ts).
  return setupStack(project, { controllerArgs: ['--resync', '20s', '--discover-node-ranges=false'] });
}
