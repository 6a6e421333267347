// `wpgw status [-n NS]`: per opted-in namespace, the gateway's address and readiness, the
// re-pointed Services, the declared destinations, and any drift or conflict.
import { parseArgs } from 'node:util';
import { loadKubeConfig } from '../cluster/index.js';
import { collectStatus, formatStatus } from '../controller/index.js';

export async function statusCommand(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    strict: true,
    options: { namespace: { type: 'string', short: 'n' }, output: { type: 'string', short: 'o' }, help: { type: 'boolean', short: 'h' } },
  });
  if (values.help) {
    process.stdout.write('Usage: wpgw status [-n NAMESPACE] [-o text|json]\n');
    return 0;
  }
  const report = await collectStatus(loadKubeConfig(), values.namespace ? { namespace: values.namespace } : {});
  process.stdout.write(values.output === 'json' ? `${JSON.stringify(report, null, 2)}\n` : `${formatStatus(report)}\n`);
  return report.errors.length > 0 ? 1 : 0;
}
