import { spawn } from 'node:child_process';

/** How a child `node` process ended and what it printed. */
export interface NodeRun {
  /** Exit code, or -1 when it was killed by a signal. */
  exitCode: number;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** True when it was killed because it outlived `timeoutMs`. */
  timedOut: boolean;
}

/**
 * Runs `node <script> …args` (this Node binary), collects its output, and SIGKILLs it after `timeoutMs` — so a
 * test never hangs on a child. `input` is written to its stdin (closed either way).
 */
export function runNode(
  script: string,
  args: string[],
  options: {
    cwd?: string;
    env?: NodeJS.ProcessEnv;
    timeoutMs: number;
    input?: string;
    /** Flags for node itself, before the script (e.g. `--expose-gc`). */
    nodeArgs?: string[];
  },
): Promise<NodeRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...(options.nodeArgs ?? []), script, ...args], {
      ...(options.cwd ? { cwd: options.cwd } : {}),
      env: { ...process.env, ...options.env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout.on('data', (d) => {
      stdout += d;
    });
    child.stderr.on('data', (d) => {
      stderr += d;
    });
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, options.timeoutMs);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ exitCode: code ?? -1, signal, stdout, stderr, timedOut });
    });
    child.stdin.end(options.input ?? '');
  });
}
