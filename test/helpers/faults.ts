import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { REDIS_URL } from './services.ts';

const run = promisify(execFile);

/**
 * Close every RabbitMQ connection process `pid` opened (warren names them `warren-<role>-<pid>-<n>`:
 * the consuming and the publishing connection of a worker), never anyone else's; the broker sends each
 * a `connection.close` (320 CONNECTION_FORCED), as `rabbitmqctl close_connection` does. Returns how many.
 *
 * One `rabbitmqctl eval` finds and closes them in the broker (a second or so, most of it the CLI's
 * start-up); if the broker's internals differ, `list_connections` then `close_connection` each.
 */
export async function closeBrokerConnections(pid: number, reason = 'fault test'): Promise<number> {
  if (!Number.isSafeInteger(pid) || pid <= 0) throw new RangeError(`not a pid: ${pid}`);
  const name = `^warren-[a-z]+-${pid}-[0-9]+$`;
  const closeMatching = `
    lists:foldl(fun(P, N) ->
      case catch rabbit_networking:connection_info(P, [client_properties]) of
        [{client_properties, Props}] when is_list(Props) ->
          case lists:keyfind(<<"connection_name">>, 1, Props) of
            {_, longstr, Name} ->
              case re:run(Name, "${name}") of
                {match, _} -> rabbit_networking:close_connection(P, ${JSON.stringify(reason)}), N + 1;
                nomatch -> N
              end;
            _ -> N
          end;
        _ -> N
      end
    end, 0, rabbit_networking:connections()).`;
  const { stdout } = await run('rabbitmqctl', ['eval', closeMatching]).catch(() => ({ stdout: '' }));
  const closed = Number(stdout.trim());
  if (stdout.trim() !== '' && Number.isSafeInteger(closed)) return closed;
  return closeListedConnections(pid, reason);
}

async function closeListedConnections(pid: number, reason: string): Promise<number> {
  const { stdout } = await run('rabbitmqctl', ['list_connections', 'pid', 'client_properties', '-q']);
  const name = new RegExp(`"warren-[a-z]+-${pid}-\\d+"`);
  const connections = stdout
    .split('\n')
    .filter((line) => name.test(line))
    .map((line) => line.split('\t')[0])
    .filter((connection): connection is string => connection !== undefined && connection !== '');
  const closed = await Promise.all(
    connections.map((connection) =>
      run('rabbitmqctl', ['close_connection', connection, reason]).then(
        () => 1,
        () => 0, // gone already
      ),
    ),
  );
  return closed.reduce<number>((n, c) => n + c, 0);
}

/** Kill process `pid`'s Redis client connections (named `warren-state-<pid>`), never anyone else's. */
export async function killRedisClients(pid: number): Promise<number> {
  const redis = new Redis(REDIS_URL);
  try {
    const list = (await redis.client('LIST')) as string;
    const ids = list
      .split('\n')
      .filter((line) => line.includes(` name=warren-state-${pid} `))
      .map((line) => /id=(\d+)/.exec(line)?.[1])
      .filter((id): id is string => id !== undefined);
    let killed = 0;
    for (const id of ids) killed += Number(await redis.client('KILL', 'ID', id));
    return killed;
  } finally {
    redis.disconnect();
  }
}
