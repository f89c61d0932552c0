import { afterAll, describe, expect, it } from 'vitest';
import { CONSUMERS, exampleCluster } from '../helpers/example-cluster.ts';
import { clicksInSessions } from '../helpers/example-output.ts';

const EVENTS = 3_000;
const cluster = exampleCluster('example', EVENTS, 120);
afterAll(() => cluster.cleanup());

describe('the example pipeline on RabbitMQ and Redis, in several worker processes', () => {
  it('brings every click to exactly one session and every session to exactly one score', async () => {
    const workers = [cluster.warren(['--actors', CONSUMERS]), cluster.warren(['--actors', CONSUMERS])];
    // Workers first, so the topology exists; then the source in a process of its own.
    await Promise.all(workers.map((w) => w.started));
    const source = cluster.warren(['--actors', 'clickstream']);
    expect(await source.exited, source.stderr).toBe(0);
    expect(source.stdout).toContain(`done: ${EVENTS} events`);

    const out = await cluster.drained(90_000);
    for (const w of workers) w.child.kill('SIGTERM');
    expect(await Promise.all(workers.map((w) => w.exited))).toEqual([0, 0]);

    expect(clicksInSessions(out), workers.map((w) => w.stderr.slice(-500)).join(' | ')).toBe(EVENTS);
    expect(new Set(out.sessions.map((s) => s.id)).size).toBe(out.sessions.length);
    expect(new Set(out.sessions.map((s) => s.sessionId)).size).toBe(out.sessions.length);
    expect(new Set(out.scores.map((s) => s.id)).size).toBe(out.scores.length);
    expect(out.scores.map((s) => s.sessionId).sort()).toEqual(out.sessions.map((s) => s.sessionId).sort());
    // RabbitMQ routed exactly the confident scores to the high-value sink.
    const confident = out.scores.filter((s) => s.score >= 0.8).map((s) => s.sessionId);
    expect(out.highValue.map((s) => s.sessionId).sort()).toEqual(confident.sort());
    // The feedback edge moved the scorer's weights.
    expect(Math.max(...out.scores.map((s) => s.modelVersion))).toBeGreaterThan(0);
    // Both workers did part of the work (competing consumers), and both stopped gracefully.
    const handled = workers.map((w) => {
      const [, sessions, scores] = /^stopped: 0 events, (\d+) sessions, (\d+) scores/m.exec(w.stdout) ?? [];
      return Number(sessions) + Number(scores);
    });
    expect(
      handled.every((n) => n > 0),
      workers.map((w) => w.stdout.slice(-120)).join(' | '),
    ).toBe(true);
  }, 150_000);
});
