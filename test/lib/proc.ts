// What the benchmarks read about a process from /proc (Linux): CPU time and memory high-water marks.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

/** Clock ticks per second: /proc/<pid>/stat counts CPU time in these (USER_HZ, 100 on Linux). */
export const CLK_TCK = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/**
 * CPU seconds (user + system) of a process, NaN once it is gone. With `waitedChildren`, also of
 * its children that have exited and been waited for (cutime, cstime), e.g. the kubectl runs of a
 * load generator.
 */
export function cpuSeconds(pid: number | 'self', waitedChildren = false): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // After "pid (comm) " (comm may hold ")"): utime is index 11, stime 12, cutime 13, cstime 14.
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const own = Number(f[11]) + Number(f[12]);
    return (waitedChildren ? own + Number(f[13]) + Number(f[14]) : own) / CLK_TCK;
  } catch {
    return Number.NaN;
  }
}

/** A memory line of /proc/<pid>/status in MiB: VmHWM (peak RSS) or VmRSS (now). */
export function procStatusMiB(pid: number, field: 'VmHWM' | 'VmRSS'): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}
