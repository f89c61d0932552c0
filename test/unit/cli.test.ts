import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Command } from '../../bin/cli-parser.ts';
import { warren as table } from '../../bin/commands.ts';

const warren = (...args: string[]) =>
  spawnSync(process.execPath, ['bin/warren.ts', ...args], {
    encoding: 'utf8',
    env: { ...process.env, WARREN_LOG_LEVEL: 'warn' },
  });

/** Every command path of the table: [], ['run'], ['dlq'], ['dlq', 'list'], ... */
function paths(command: Command, path: string[] = []): string[][] {
  return [path, ...(command.commands ?? []).flatMap((c) => paths(c, [...path, c.name]))];
}

describe('the warren CLI', () => {
  it('prints the Rascal configuration of a pipeline', () => {
    const result = warren('topology', 'config/pipeline.ts');
    expect(result.status).toBe(0);
    const config = JSON.parse(result.stdout) as {
      vhosts: Record<string, { queues: Record<string, unknown> }>;
    };
    expect(Object.keys(config.vhosts['/']?.queues ?? {})).toContain('shop.sessionizer.0');
  });

  it('prints the topology `warren run` would declare with this environment, and names a bad setting', () => {
    const withEnv = (env: Record<string, string>) =>
      spawnSync(process.execPath, ['bin/warren.ts', 'topology', 'config/pipeline.ts'], {
        encoding: 'utf8',
        env: { ...process.env, WARREN_LOG_LEVEL: 'warn', ...env },
      });
    const result = withEnv({ WARREN_PREFIX: 'eu', WARREN_QUEUE_TYPE: 'quorum', WARREN_DELIVERY_LIMIT: '7' });
    expect(result.status, result.stderr).toBe(0);
    const config = JSON.parse(result.stdout) as {
      vhosts: Record<
        string,
        { queues: Record<string, { options?: { arguments?: Record<string, unknown> } }> }
      >;
    };
    const shard = config.vhosts['/']?.queues['eu.sessionizer.0'];
    expect(shard?.options?.arguments).toMatchObject({ 'x-queue-type': 'quorum', 'x-delivery-limit': 7 });
    const bad = withEnv({ WARREN_QUEUE_TYPE: 'mirrored' });
    expect(bad.status).not.toBe(0);
    expect(bad.stderr).toContain('WARREN_QUEUE_TYPE');
    const v2 = withEnv({ WARREN_QUEUE_VERSION: '2' });
    expect(v2.status, v2.stderr).toBe(0);
    const classic = JSON.parse(v2.stdout) as typeof config;
    expect(classic.vhosts['/']?.queues['shop.sessionizer.0']?.options?.arguments).toMatchObject({
      'x-queue-version': 2,
    });
    const mixed = withEnv({ WARREN_QUEUE_TYPE: 'quorum', WARREN_QUEUE_VERSION: '2' });
    expect(mixed.status).not.toBe(0);
    expect(mixed.stderr).toContain('WARREN_QUEUE_VERSION');
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

describe('warren init', () => {
  it('prints the files it wrote and the next commands, and refuses a folder that is not empty without --force', () => {
    const parent = mkdtempSync(join(tmpdir(), 'warren-init-'));
    try {
      const dir = join(parent, 'demo');
      const result = warren('init', dir, '--name', 'demo-shop');
      expect(result.status, result.stderr).toBe(0);
      const shown = relative(process.cwd(), dir);
      expect(result.stdout).toMatch(new RegExp(`^created ${shown.replaceAll('.', '\\.')}:\n`));
      expect(result.stdout).toContain('\n  package.json\n');
      expect(result.stdout).toContain('\n  pipeline.ts\n');
      expect(result.stdout).toMatch(/\nnext:\n {2}cd \S+demo && npm install && npm start && npm test\n$/);
      const again = warren('init', dir);
      expect(again.status).toBe(2);
      expect(again.stderr).toContain('--force');
      expect(warren('init', dir, '--force').status).toBe(0);
    } finally {
      rmSync(parent, { recursive: true, force: true });
    }
  });
});

describe('--help', () => {
  const all = paths(table);

  it('covers every command and subcommand of the table', () => {
    expect(all.map((p) => p.join(' '))).toEqual([
      '',
      'run',
      'topology',
      'route',
      'graph',
      'dashboard',
      'dlq',
      'dlq list',
      'dlq replay',
      'dlq purge',
      'init',
    ]);
  });

  it.each(all.map((p) => [p.join(' ') || '(none)', p] as const))(
    'warren %s --help: exits 0 with the usage, every option and every subcommand',
    (_, path) => {
      const result = warren(...path, '--help');
      expect(result.status, result.stderr).toBe(0);
      expect(result.stdout).toMatch(new RegExp(`^Usage: ${['warren', ...path].join(' ')} `));
      let command: Command = table;
      for (const name of path) command = command.commands?.find((c) => c.name === name) ?? command;
      for (const [option, spec] of Object.entries(command.options ?? {}))
        expect(result.stdout).toContain(spec.negatable ? `--[no-]${option}` : `--${option}`);
      for (const sub of command.commands ?? []) expect(result.stdout).toContain(`  ${sub.name}  `);
      expect(result.stdout).toContain('-h, --help');
      expect(warren(...path, '-h').stdout).toBe(result.stdout);
    },
  );

  it('documents the exit codes of warren run', () => {
    const help = warren('run', '--help').stdout;
    expect(help).toMatch(/^ {2}3 {2}the run finished \(its sources ended\) and parked messages/m);
    expect(help).toMatch(
      /^ {2}4 {2}an actor failed for good \(a source out of restarts, a worker pool that gave up\)/m,
    );
    expect(help).toMatch(/^ {2}0 {2}.*stopped by SIGINT\/SIGTERM/m);
  });

  it('prints the version', () => {
    const result = warren('--version');
    expect(result.status).toBe(0);
    expect(result.stdout).toMatch(/^\d+\.\d+\.\d+/);
  });
});

describe('usage errors exit 2 with the usage of that command', () => {
  it.each([
    [['run', 'config/pipeline.ts', '--frob'], 'unknown option --frob', 'warren run <pipeline> [options]'],
    [['run'], 'missing <pipeline>', 'warren run <pipeline> [options]'],
    [['run', 'a.ts', 'b.ts'], 'unexpected argument "b.ts"', 'warren run <pipeline> [options]'],
    [['run', 'config/pipeline.ts', '--bus'], '--bus needs a value', 'warren run <pipeline> [options]'],
    [['run', 'config/pipeline.ts', '--bus', 'kafka'], '--bus kafka: expected memory or amqp', 'warren run'],
    [['run', 'config/pipeline.ts', '--no-bus'], 'unknown option --no-bus', 'warren run'],
    [['run', 'config/pipeline.ts', '--no-until-stopped'], 'unknown option --no-until-stopped', 'warren run'],
    [['nosuch'], 'unknown command "nosuch"', 'warren <command>'],
    [[], 'missing command', 'warren <command>'],
    [['dlq'], 'missing command', 'warren dlq <command>'],
    [['dlq', 'nosuch'], 'unknown command "dlq nosuch"', 'warren dlq <command>'],
    [['dlq', 'list', 'config/pipeline.ts'], 'missing <actor>', 'warren dlq list <pipeline> <actor>'],
    [
      ['dlq', 'list', 'config/pipeline.ts', 'scores', '--limit', '0'],
      '--limit 0: expected a positive integer',
      'warren dlq list',
    ],
    [
      ['topology', 'config/pipeline.ts', '--type', 'x'],
      'unknown option --type',
      'warren topology <pipeline>',
    ],
  ])('warren %j', (args, message, usage) => {
    const result = warren(...args);
    expect(result.status).toBe(2);
    expect(result.stderr).toContain(`warren: ${message}\n`);
    expect(result.stderr).toContain(`Usage: ${usage}`);
    expect(result.stdout).toBe('');
  });

  it('names --type and lists the types when no actor emits the type', () => {
    const result = warren('route', 'config/pipeline.ts', '--type', 'nosuch');
    expect(result.status).toBe(2);
    expect(result.stderr).toContain(
      'warren: --type nosuch: no actor of "shop" emits it (types: click, outcome, score or session)',
    );
    expect(result.stderr).not.toContain('message.from');
  });

  it('names --from and lists the actors for an unknown emitter, and says what a wrong one emits', () => {
    const unknown = warren('route', 'config/pipeline.ts', '--type', 'score', '--from', 'nosuch');
    expect(unknown.status).toBe(2);
    expect(unknown.stderr).toContain(
      'warren: --from nosuch: pipeline "shop" has no actor "nosuch" (its actors: clickstream, sessionizer, scorer, outcomes, sessions, scores, high-value)',
    );
    const wrong = warren('route', 'config/pipeline.ts', '--type', 'score', '--from', 'clickstream');
    expect(wrong.status).toBe(2);
    expect(wrong.stderr).toContain(
      '--from clickstream: it does not emit "score" (it emits click; "score" comes from scorer)',
    );
  });

  it('names --actors and lists the actors for an unknown one', () => {
    const result = warren('run', 'config/pipeline.ts', '--actors', 'scorer,nosuch');
    expect(result.status).toBe(2);
    expect(result.stderr).toContain(
      'warren: --actors nosuch: pipeline "shop" has no actor "nosuch" (its actors: clickstream, sessionizer, scorer, outcomes, sessions, scores, high-value)',
    );
  });

  it.each(['list', 'replay', 'purge'])('dlq %s with an unknown actor lists the actors', (action) => {
    const result = warren('dlq', action, 'config/pipeline.ts', 'nosuch');
    expect(result.status).toBe(2);
    expect(result.stderr).toContain(
      'warren: <actor> nosuch: pipeline "shop" has no actor "nosuch" (its actors: clickstream, sessionizer, scorer, outcomes, sessions, scores, high-value)',
    );
  });
});
