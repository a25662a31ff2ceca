import { spawn, ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { createInterface } from 'node:readline';

// A dashboard of its own for a spec that needs other flags or another file than the shared
// fixture server: the release binary on a loopback port, resolved once it says it serves.

export const binary = resolve(__dirname, '../../target/release/hydra-dashboard');
export const fixtures = process.env.HYDRA_FIXTURES ?? resolve(__dirname, '../../../shared/fixtures');

export async function serve(db: string, port: number, flags: string[]): Promise<ChildProcess> {
  const server = spawn(binary, ['serve', '--db', db, '--addr', `127.0.0.1:${port}`, ...flags],
    { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((ready, fail) => {
    server.stdout!.on('data', (d) => { if (String(d).includes('serving')) ready(); });
    server.on('exit', (code) => fail(new Error(`server exited ${code}`)));
  });
  return server;
}

/** The fixture trainer training live in `dir` with `args`, once its log directory exists. */
export async function trainLive(dir: string, args: string[]): Promise<ChildProcess> {
  const trainer = spawn('python3', [resolve(fixtures, 'hydra_trainer.py'), dir, '--live', ...args],
    { stdio: 'ignore' });
  for (let i = 0; i < 200 && !existsSync(resolve(dir, 'logs')); i++) await new Promise((r) => setTimeout(r, 50));
  return trainer;
}

/** `serve --root dir` on a free loopback port, and the host:port it says it serves on. */
export async function serveRoot(dir: string, flags: string[]): Promise<{ server: ChildProcess; base: string }> {
  const server = spawn(binary, ['serve', '--root', dir, '--addr', '127.0.0.1:0', ...flags],
    { stdio: ['ignore', 'pipe', 'inherit'] });
  const first: string = await new Promise((ok) => createInterface({ input: server.stdout! }).once('line', ok));
  return { server, base: first.split('http://')[1].trim() };
}
