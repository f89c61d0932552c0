import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';

const warren = (...args: string[]) =>
  spawnSync(process.execPath, ['bin/warren.ts', ...args], {
    encoding: 'utf8',
    env: { ...process.env, WARREN_LOG_LEVEL: 'warn' },
  });

describe('the warren CLI', () => {
  it('prints the Rascal configuration of a pipeline', () => {
    const result = warren('topology', 'config/pipeline.ts');
    expect(result.status).toBe(0);
    const config = JSON.parse(result.stdout) as {
      vhosts: Record<string, { queues: Record<string, unknown> }>;
    };
    expect(Object.keys(config.vhosts['/']?.queues ?? {})).toContain('shop.sessionizer.0');
  });

  it('prints the actors a message reaches', () => {
    const body = JSON.stringify({
      sessionId: 's',
      userId: 'u',
      device: 'tablet',
      score: 0.2,
      features: [1, 0, 0, 0],
      purchased: false,
      modelVersion: 0,
    });
    const result = warren('route', 'config/pipeline.ts', '--type', 'score', '--body', body);
    expect(result.status).toBe(0);
    expect(JSON.parse(result.stdout)).toMatchObject({ actors: ['outcomes', 'scores'], unroutable: false });
  });

  it('exits non-zero at start naming the actor and field of an invalid pipeline', () => {
    const module = 'test/fixtures/invalid-pipeline.ts';
    const result = warren('run', module);
    expect(result.status).toBe(2);
    expect(result.stderr).toContain('actors.sink.consumes.b: no actor emits "b" to it');
  });

  it('exits non-zero naming a bad configuration field', () => {
    const result = spawnSync(process.execPath, ['bin/warren.ts', 'run', 'config/pipeline.ts'], {
      encoding: 'utf8',
      env: { ...process.env, WARREN_BUS: 'kafka' },
    });
    expect(result.status).toBe(2);
    expect(result.stderr).toMatch(/WARREN_BUS/);
  });
});
