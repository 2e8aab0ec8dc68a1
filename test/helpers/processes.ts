import { execFileSync } from 'node:child_process';

/**
 * Live processes whose command line mentions `pattern` (e.g. a test's temp dir: every daemon and tor started
 * for it names it). Zombies are left out: this VM's PID 1 does not reap them, but they hold nothing.
 */
export function liveProcesses(pattern: string): string[] {
  let pids: string[];
  try {
    pids = execFileSync('pgrep', ['-f', pattern], { encoding: 'utf8' }).trim().split('\n').filter(Boolean);
  } catch {
    return []; // pgrep exits 1 when nothing matches
  }
  return pids.filter((p) => {
    try {
      return !execFileSync('ps', ['-o', 'stat=', '-p', p], { encoding: 'utf8' }).includes('Z');
    } catch {
      return false;
    }
  });
}
