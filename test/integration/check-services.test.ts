import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';

function check(env: Record<string, string>) {
  const started = Date.now();
  const result = spawnSync(process.execPath, ['scripts/check-services.ts'], {
    env: { ...process.env, ...env },
    encoding: 'utf8',
  });
  return { ...result, ms: Date.now() - started };
}

describe('the service check that runs before npm test', () => {
  it('passes when RabbitMQ and Redis answer', () => {
    expect(check({}).status).toBe(0);
  });

  it('fails within seconds naming the service that is down and how to start it', () => {
    const redisDown = check({ REDIS_URL: 'redis://127.0.0.1:6399' });
    expect(redisDown.status).toBe(1);
    expect(redisDown.stderr).toContain('Redis is not reachable at 127.0.0.1:6399');
    expect(redisDown.stderr).toContain('redis-server --daemonize yes');
    expect(redisDown.stderr).not.toContain('RabbitMQ is not reachable');
    expect(redisDown.ms).toBeLessThan(10_000);

    const rabbitDown = check({ RABBITMQ_URL: 'amqp://guest:secret@127.0.0.1:5699' });
    expect(rabbitDown.status).toBe(1);
    expect(rabbitDown.stderr).toContain('RabbitMQ is not reachable at 127.0.0.1:5699');
    expect(rabbitDown.stderr).toContain('rabbitmq-server -detached');
    expect(rabbitDown.stderr).not.toContain('secret');
  });
});
