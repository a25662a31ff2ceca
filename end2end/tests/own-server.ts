import { spawn, ChildProcess } from 'node:child_process';
import { resolve } from 'node:path';

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
