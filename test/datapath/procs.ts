// Processes the data-path harness starts: each in its own process group with its output in a log
// file, stopped by its own pid only (SIGTERM, then SIGKILL), never by name.
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { appendFileSync, closeSync, existsSync, openSync, readFileSync, rmSync } from 'node:fs';

let registry: string | undefined;

/**
 * Every process started from now on is listed in `file` (one pid = process group per line), so a
 * later run can stop what a crashed one left behind (killStale).
 */
export function registerPids(file: string): void {
  registry = file;
}

/** Stops the process groups a previous run listed in `file`, if their leader still runs `marker`. */
export function killStale(file: string, marker: string): number {
  if (!existsSync(file)) return 0;
  let n = 0;
  for (const pid of readFileSync(file, 'utf8').split('\n').filter(Boolean).map(Number)) {
    let cmd = '';
    try {
      cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    } catch {
      continue;
    }
    if (!cmd.includes(marker)) continue;
    try {
      process.kill(-pid, 'SIGKILL');
      n++;
    } catch {
      // gone meanwhile
    }
  }
  rmSync(file, { force: true });
  return n;
}

export interface Proc {
  name: string;
  child: ChildProcess;
  log: string;
  exited: Promise<number | null>;
}

export function startProc(
  name: string,
  cmd: string,
  args: string[],
  opts: { log: string; env?: NodeJS.ProcessEnv; cwd?: string },
): Proc {
  const fd = openSync(opts.log, 'a');
  const child = spawn(cmd, args, {
    env: opts.env ?? process.env,
    cwd: opts.cwd,
    stdio: ['ignore', fd, fd],
    detached: true,
  });
  closeSync(fd);
  if (registry && child.pid) appendFileSync(registry, `${child.pid}\n`);
  const exited = new Promise<number | null>((res) => {
    child.on('exit', (code, sig) => res(code ?? (sig ? -1 : null)));
    child.on('error', () => res(-2));
  });
  return { name, child, log: opts.log, exited };
}

export function alive(p: Proc): boolean {
  return p.child.exitCode === null && p.child.signalCode === null;
}

/** SIGTERM to the process group we created, SIGKILL after graceMs. */
export async function stopProc(p: Proc, graceMs = 5000): Promise<void> {
  const pid = p.child.pid;
  if (!pid || !alive(p)) return;
  const signal = (s: NodeJS.Signals) => {
    try {
      process.kill(-pid, s);
    } catch {
      // already gone
    }
  };
  signal('SIGTERM');
  const t = setTimeout(() => signal('SIGKILL'), graceMs);
  await p.exited;
  clearTimeout(t);
  signal('SIGKILL'); // children left in the group (Envoy under pilot-agent)
}

/** Runs a command to completion; rejects with its output on a non-zero exit. */
export function run(
  cmd: string,
  args: string[],
  opts: { timeoutMs?: number; input?: string; env?: NodeJS.ProcessEnv } = {},
): Promise<string> {
  return new Promise((res, rej) => {
    const c = execFile(
      cmd,
      args,
      {
        timeout: opts.timeoutMs ?? 60_000,
        maxBuffer: 64 * 1024 * 1024,
        env: opts.env ?? process.env,
        encoding: 'utf8',
      },
      (err, stdout, stderr) => {
        if (err) rej(new Error(`${cmd} ${args.join(' ')}: ${err.message}\n${stderr}${stdout}`));
        else res(stdout);
      },
    );
    if (opts.input !== undefined) c.stdin?.end(opts.input);
  });
}
