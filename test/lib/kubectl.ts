// kubectl as users run it, for the e2e suite and the benchmarks: the admin kubeconfig in the
// environment, the result returned (never thrown) by the synchronous form.
import { execFile, spawnSync } from 'node:child_process';

export interface KubectlResult {
  status: number;
  stdout: string;
  stderr: string;
}

export function kubectlSync(
  bin: string,
  kubeconfig: string,
  args: string[],
  opts: { input?: string | undefined; timeoutMs?: number } = {},
): KubectlResult {
  const r = spawnSync(bin, args, {
    env: { ...process.env, KUBECONFIG: kubeconfig },
    input: opts.input,
    encoding: 'utf8',
    timeout: opts.timeoutMs ?? 60_000,
    maxBuffer: 512 * 1024 * 1024,
  });
  return { status: r.status ?? -1, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

/** kubectl that must succeed, without blocking this process: resolves to its stdout. */
export function kubectlAsync(bin: string, kubeconfig: string, args: string[], input?: string): Promise<string> {
  return new Promise((res, rej) => {
    const child = execFile(
      bin,
      args,
      { env: { ...process.env, KUBECONFIG: kubeconfig }, maxBuffer: 512 * 1024 * 1024 },
      (err, stdout, stderr) =>
        err ? rej(new Error(`kubectl ${args.slice(0, 3).join(' ')}: ${stderr || err.message}`)) : res(stdout),
    );
    if (input !== undefined) child.stdin?.end(input);
  });
}
