import { describe, expect, it } from 'vitest';
import { ConfigError } from 'warren';
import { loadRuntimeConfig } from '../../config/runtime-config.ts';
import { brokerOrder } from '../../runtime/transport/amqp-connect.ts';
import {
  brokerUrls,
  connectOptionsOf,
  endpointOf,
  maskUrl,
  scrubPassword,
} from '../../runtime/transport/amqp-url.ts';

const three =
  'amqp://app:s3cret@rabbit-1:5672/shop, amqp://app:s3cret@rabbit-2:5672/shop,amqps://app:p%40ss@rabbit-3/shop';

describe('a list of broker URLs', () => {
  it('splits on the commas that begin a URL, never on one inside a password', () => {
    expect(brokerUrls(three)).toEqual([
      'amqp://app:s3cret@rabbit-1:5672/shop',
      'amqp://app:s3cret@rabbit-2:5672/shop',
      'amqps://app:p%40ss@rabbit-3/shop',
    ]);
    expect(brokerUrls('amqp://guest:gu,est@host')).toEqual(['amqp://guest:gu,est@host']);
    expect(brokerUrls('amqp://a,amqp://b,')).toEqual(['amqp://a', 'amqp://b,']);
    expect(brokerUrls('amqp://one')).toEqual(['amqp://one']);
  });

  it('masks, names and scrubs every URL of the list', () => {
    expect(maskUrl(three)).toBe(
      'amqp://app:***@rabbit-1:5672/shop,amqp://app:***@rabbit-2:5672/shop,amqps://app:***@rabbit-3/shop',
    );
    expect(endpointOf(three)).toBe('rabbit-1:5672,rabbit-2:5672,rabbit-3:5671');
    const leaked = 'refused app:s3cret and app:p@ss and app:p%40ss';
    expect(scrubPassword(leaked, three)).toBe('refused app:*** and app:*** and app:***');
  });

  it('tries the brokers from a random one, then round the list, each once', () => {
    const urls = ['a', 'b', 'c'];
    expect(brokerOrder(urls, () => 0)).toEqual(['a', 'b', 'c']);
    expect(brokerOrder(urls, () => 0.5)).toEqual(['b', 'c', 'a']);
    expect(brokerOrder(urls, () => 0.99)).toEqual(['c', 'a', 'b']);
    expect(brokerOrder(['only'])).toEqual(['only']);
    for (let i = 0; i < 20; i++) expect(brokerOrder(urls).sort()).toEqual(urls);
  });

  it('turns each URL into amqplib’s connect object with every field spelled out', () => {
    expect(connectOptionsOf('amqp://app:p%40ss@rabbit-1:5673/%2Fshop?heartbeat=5&frameMax=8192')).toEqual({
      protocol: 'amqp',
      hostname: 'rabbit-1',
      port: 5673,
      username: 'app',
      password: 'p@ss',
      vhost: '%2Fshop',
      heartbeat: 5,
      frameMax: 8192,
      channelMax: undefined,
      locale: undefined,
    });
    // No credentials: amqplib's guest/guest default; the protocol's default port; a heartbeat given.
    expect(connectOptionsOf('amqps://[::1]', 10)).toMatchObject({
      protocol: 'amqps',
      hostname: '::1',
      port: 5671,
      username: undefined,
      password: undefined,
      vhost: undefined,
      heartbeat: 10,
    });
    expect(connectOptionsOf('http://nope')).toBeUndefined();
    expect(connectOptionsOf('not a url')).toBeUndefined();
  });
});

describe('RABBITMQ_URL with several brokers', () => {
  it('accepts a comma-separated list of a cluster’s nodes as it is', () => {
    const config = loadRuntimeConfig({ RABBITMQ_URL: three });
    expect(config.bus).toBe('amqp');
    expect(config.rabbitmqUrl).toBe(three);
  });

  it('refuses a bad URL of the list or URLs on different vhosts, naming the variable, never a password', () => {
    const fail = (RABBITMQ_URL: string): ConfigError => {
      try {
        loadRuntimeConfig({ RABBITMQ_URL });
      } catch (err) {
        if (err instanceof ConfigError) return err;
        throw err;
      }
      throw new Error('expected a ConfigError');
    };
    const bad = fail('amqp://app:s3cret@rabbit-1,http://app:s3cret@rabbit-2');
    expect(bad.path).toBe('RABBITMQ_URL');
    expect(bad.message).toMatch(/URL 2 of 2 must be a URL starting with amqp:\/\/ or amqps:\/\//);
    expect(bad.message).not.toContain('s3cret');
    const vhosts = fail('amqp://app:s3cret@rabbit-1/a,amqp://app:s3cret@rabbit-2/b');
    expect(vhosts.path).toBe('RABBITMQ_URL');
    expect(vhosts.message).toMatch(/same vhost/);
    expect(vhosts.message).not.toContain('s3cret');
  });
});
