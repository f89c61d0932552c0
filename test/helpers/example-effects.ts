import type { Click, Score, Session } from '../../actors/example/schemas.ts';
import { byId, type ExampleOutput, type SinkLine } from './example-output.ts';

/** A click as the clickstream generated it; the generation order is the per-user order. */
export interface GeneratedClick {
  readonly body: Click;
}

export interface EffectsReport {
  /** Effects that should exist and do not: clicks in no session, sessions never scored, and so on. */
  readonly lost: number;
  /** Effects present more often than they should be (twice, or where they should be absent). */
  readonly duplicated: number;
  /** Of `duplicated`: sink lines written again under a message id already in the file. */
  readonly rewrittenLines: number;
  /** Per-key order violations (see {@link exampleEffects} for exactly what is checked). */
  readonly reordered: number;
  /** What was found, one line per problem, at most `maxFindings`. */
  readonly findings: readonly string[];
}

/**
 * Every effect of the example pipeline, checked against the clicks the clickstream generated
 * (`generateClicks` is deterministic, so the checker regenerates them from the run's seed and run id).
 * Sink lines are first de-duplicated by message id (`byId`), as `expectEveryClickOnce` does, but here a
 * line written twice is counted as duplicated rather than forgiven.
 *
 * lost:
 * - a generated click that no session accounts for;
 * - a session with no score; a session scored at least 0.8 with no high-value line;
 * - an outcome the scorer never applied (with `outcomesApplied`: its weight version per device must equal
 *   the number of sessions of that device it scored, since each score sends one outcome back).
 *
 * duplicated:
 * - a sink line whose message id was already written (sessions, scores, high-value);
 * - one session (same `sessionId`) emitted under two message ids; one session scored twice; one session
 *   twice in high-value, or in high-value without a score of at least 0.8;
 * - a click accounted for by two sessions; an outcome applied twice.
 *
 * reordered: the order evidence the outputs carry.
 * - Sessions: a user's clicks (generation order) must be cut into that user's sessions `<user>:1`,
 *   `<user>:2`, ... in order, each session a consecutive run of clicks that follows the previous one,
 *   with exactly the summary the sessionizer machine computes from that run in that order: click count,
 *   views, cart adds, revenue (checkout prices after the first click), duration (last `at` minus first
 *   `at`), device, and `endedBy`/`purchased` (checkout exactly when a later-than-first click is a
 *   checkout, and then only as the last click). A session that is no such run where the previous ones
 *   left off is reordered. If it is such a run further on (or earlier), it is placed there instead, and
 *   the clicks skipped (or covered twice) count as lost (or duplicated), not as reordered. Blind spot:
 *   two clicks swapped inside one session, neither of them its first or last, leave no trace (a
 *   session carries counts and sums, not its clicks).
 * - Scores: the scorer is keyed by device and a user has one device, so a user's sessions reach one
 *   scorer instance in the order the sessionizer emitted them, and `modelVersion` (outcomes applied so
 *   far) can only grow: a user's session scored with a lower `modelVersion` than that user's previous
 *   session counts as reordered.
 *
 * The classification is the simplest explanation of what is seen; any non-zero count is a failure.
 *
 * @example
 * ```ts
 * const clicks = [...generateClicks({ users, events, seed, runId })].map((c) => ({ body: Click.parse(c.body) }));
 * const report = exampleEffects(readExampleOutput(outDir), clicks);
 * report.lost + report.duplicated + report.reordered; // 0
 * ```
 */
export function exampleEffects(
  output: ExampleOutput,
  generated: Iterable<GeneratedClick>,
  options: { readonly outcomesApplied?: ReadonlyMap<string, number>; readonly maxFindings?: number } = {},
): EffectsReport {
  let lost = 0;
  let duplicated = 0;
  let reordered = 0;
  let rewrittenLines = 0;
  const findings: string[] = [];
  const find = (line: string) => {
    if (findings.length < (options.maxFindings ?? 50)) findings.push(line);
  };

  // A sink that wrote one message's line twice.
  for (const [sink, lines] of [
    ['sessions', output.sessions],
    ['scores', output.scores],
    ['high-value', output.highValue],
  ] as const) {
    const extra = lines.length - byId<{ id: string }>(lines).length;
    if (extra > 0) {
      duplicated += extra;
      rewrittenLines += extra;
      find(`${sink}: ${extra} line(s) written again under a message id already written`);
    }
  }

  const sessionsById = firstBySession(byId(output.sessions), 'sessions', (n) => (duplicated += n), find);
  const scoresById = firstBySession(byId(output.scores), 'scores', (n) => (duplicated += n), find);
  const highById = firstBySession(byId(output.highValue), 'high-value', (n) => (duplicated += n), find);

  // Clicks into sessions, per user.
  const clicksOf = new Map<string, Click[]>();
  for (const { body } of generated) {
    const list = clicksOf.get(body.userId);
    if (list) list.push(body);
    else clicksOf.set(body.userId, [body]);
  }
  const sessionsOf = new Map<string, Array<SinkLine<Session> & { n: number }>>();
  for (const session of sessionsById.values()) {
    const n = sessionNumber(session);
    if (n === undefined) {
      reordered++;
      find(`session ${session.sessionId}: not <userId>:<n> of its user ${session.userId}`);
      continue;
    }
    const list = sessionsOf.get(session.userId);
    if (list) list.push({ ...session, n });
    else sessionsOf.set(session.userId, [{ ...session, n }]);
  }
  for (const [user, sessions] of sessionsOf) {
    if (!clicksOf.has(user)) {
      duplicated += sessions.length;
      find(`sessions of ${user}, who never clicked: ${sessions.map((s) => s.sessionId).join(', ')}`);
    }
  }
  for (const [user, clicks] of clicksOf) {
    const sessions = (sessionsOf.get(user) ?? []).sort((a, b) => a.n - b.n);
    const cover = new Array<number>(clicks.length).fill(0);
    let next = 0;
    let previousVersion = -1;
    for (const session of sessions) {
      const at = nearestRun(clicks, next, session);
      if (at === undefined) {
        reordered++;
        find(
          `session ${session.sessionId}: not the run of ${session.clicks} click(s) of ${user} from #${next} (of ${clicks.length}) in generation order, nor any other run`,
        );
      } else if (at !== next) {
        find(`session ${session.sessionId}: is the run from click #${at} of ${user}, expected from #${next}`);
      }
      const from = at ?? next;
      for (let i = from; i < Math.min(from + session.clicks, clicks.length); i++)
        cover[i] = (cover[i] ?? 0) + 1;
      next = from + session.clicks;
      const score = scoresById.get(session.sessionId);
      if (score) {
        if (score.modelVersion < previousVersion) {
          reordered++;
          find(
            `score of ${session.sessionId}: model version ${score.modelVersion} after ${previousVersion} for ${user}'s previous session`,
          );
        }
        previousVersion = Math.max(previousVersion, score.modelVersion);
      }
    }
    const missing = cover.filter((c) => c === 0).length;
    // Clicks covered twice, and clicks a session claims past the user's last one.
    const twice = cover.reduce((n, c) => n + Math.max(0, c - 1), 0) + Math.max(0, next - clicks.length);
    if (missing > 0) {
      lost += missing;
      find(`${user}: ${missing} of ${clicks.length} click(s) in no session`);
    }
    if (twice > 0) {
      duplicated += twice;
      find(`${user}: ${twice} click(s) accounted for by more than one session`);
    }
  }

  // Every session scored once; every confident score in high-value once, and nothing else there.
  for (const sessionId of sessionsById.keys()) {
    if (!scoresById.has(sessionId)) {
      lost++;
      find(`session ${sessionId}: never scored`);
    }
  }
  for (const sessionId of scoresById.keys()) {
    if (!sessionsById.has(sessionId)) find(`score of ${sessionId}: its session is not in sessions`);
  }
  for (const [sessionId, score] of scoresById) {
    if (score.score >= 0.8 && !highById.has(sessionId)) {
      lost++;
      find(`score of ${sessionId} (${score.score.toFixed(3)}): not in high-value`);
    }
  }
  for (const [sessionId, line] of highById) {
    const score = scoresById.get(sessionId);
    if (!score || score.score < 0.8) {
      duplicated++;
      find(`high-value ${line.id} (${sessionId}): no score of at least 0.8 for that session`);
    }
  }

  // The feedback edge: each score's outcome moved its device's weights exactly once.
  if (options.outcomesApplied) {
    const expected = new Map<string, number>();
    for (const score of scoresById.values())
      expected.set(score.device, (expected.get(score.device) ?? 0) + 1);
    const devices = new Set([...expected.keys(), ...options.outcomesApplied.keys()]);
    for (const device of devices) {
      const want = expected.get(device) ?? 0;
      const got = options.outcomesApplied.get(device) ?? 0;
      if (got < want) lost += want - got;
      if (got > want) duplicated += got - want;
      if (got !== want) find(`scorer[${device}]: ${got} outcome(s) applied, ${want} sessions scored`);
    }
  }

  return { lost, duplicated, rewrittenLines, reordered, findings };
}

/** The first line per session id; the others are counted as duplicates (a second message id). */
function firstBySession<T extends SinkLine<Session | Score>>(
  lines: readonly T[],
  sink: string,
  duplicates: (n: number) => void,
  find: (line: string) => void,
): Map<string, T> {
  const first = new Map<string, T>();
  for (const line of lines) {
    const seen = first.get(line.sessionId);
    if (!seen) first.set(line.sessionId, line);
    else {
      duplicates(1);
      find(`${sink}: ${line.sessionId} under two message ids, ${seen.id} and ${line.id}`);
    }
  }
  return first;
}

/** `n` of a session id `<userId>:<n>`, the user's n-th session. */
function sessionNumber(session: Session): number | undefined {
  const prefix = `${session.userId}:`;
  if (!session.sessionId.startsWith(prefix)) return undefined;
  const n = Number(session.sessionId.slice(prefix.length));
  return Number.isSafeInteger(n) && n > 0 ? n : undefined;
}

/** The start nearest to `next` of a run of the user's clicks that gives exactly `session`. */
function nearestRun(clicks: readonly Click[], next: number, session: Session): number | undefined {
  const last = clicks.length - session.clicks;
  for (let d = 0; d <= Math.max(next, last - next); d++) {
    if (next + d <= last && isRun(clicks, next + d, session)) return next + d;
    if (d > 0 && next - d >= 0 && next - d <= last && isRun(clicks, next - d, session)) return next - d;
  }
  return undefined;
}

/**
 * Whether clicks `from .. from + session.clicks - 1`, applied in this order to the sessionizer machine
 * (open on the first click, extend on each later one, close on a later checkout or on a timeout), give
 * exactly this session's summary.
 */
function isRun(clicks: readonly Click[], from: number, session: Session): boolean {
  const n = session.clicks;
  const first = clicks[from];
  const lastClick = clicks[from + n - 1];
  if (n < 1 || !first || !lastClick) return false;
  let views = first.action === 'view' ? 1 : 0;
  let carts = first.action === 'add_to_cart' ? 1 : 0;
  let revenue = 0;
  for (let i = 1; i < n; i++) {
    const click = clicks[from + i] as Click;
    // A checkout after the first click closes the session: only the last click may be one.
    if (click.action === 'checkout' && i < n - 1) return false;
    if (click.action === 'view') views++;
    if (click.action === 'add_to_cart') carts++;
    if (click.action === 'checkout') revenue += click.price;
  }
  const endedBy = n >= 2 && lastClick.action === 'checkout' ? 'checkout' : 'timeout';
  return (
    session.userId === first.userId &&
    session.device === first.device &&
    session.views === views &&
    session.carts === carts &&
    Math.abs(session.revenue - revenue) < 1e-6 &&
    session.durationMs === lastClick.at - first.at &&
    session.endedBy === endedBy &&
    session.purchased === (endedBy === 'checkout')
  );
}
