import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadRuntimeConfig, tlsOptions } from '../../config/runtime-config.ts';

const dir = mkdtempSync(join(tmpdir(), 'warren-tls-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('TLS configuration for amqps:// and rediss://', () => {
  it('reads the CA, certificate and key files named in the environment', () => {
    const files = { ca: join(dir, 'ca.pem'), cert: join(dir, 'cert.pem'), key: join(dir, 'key.pem') };
    for (const [name, path] of Object.entries(files)) writeFileSync(path, `-----${name}-----`);
    const config = loadRuntimeConfig({
      RABBITMQ_URL: 'amqps://app:secret@broker.internal/prod',
      REDIS_URL: 'rediss://cache.internal:6380',
      WARREN_TLS_CA_FILE: files.ca,
      WARREN_TLS_CERT_FILE: files.cert,
      WARREN_TLS_KEY_FILE: files.key,
    });
    expect(config).toMatchObject({ bus: 'amqp', state: 'redis' });
    const tls = tlsOptions(config);
    expect(Object.fromEntries(Object.entries(tls).map(([k, v]) => [k, v.toString()]))).toEqual({
      ca: '-----ca-----',
      cert: '-----cert-----',
      key: '-----key-----',
    });
  });

  it('fails at start naming the variable of a file it cannot read, without the URL’s password', () => {
    const load = () =>
      tlsOptions(
        loadRuntimeConfig({
          RABBITMQ_URL: 'amqps://app:secret@broker.internal/prod',
          WARREN_TLS_CA_FILE: join(dir, 'missing.pem'),
        }),
      );
    expect(load).toThrow(/WARREN_TLS_CA_FILE: cannot read .*missing\.pem: ENOENT/);
    expect(load).not.toThrow(/secret/);
  });

  it('passes nothing when no file is configured', () => {
    expect(tlsOptions(loadRuntimeConfig({}))).toEqual({});
  });
});
