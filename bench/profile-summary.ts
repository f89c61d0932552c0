/**
 * Where the time goes in a `node --cpu-prof` profile: self time by area (a package, one of our files,
 * GC, node internals) and the functions with the most self and inclusive time.
 *
 *   node --cpu-prof --cpu-prof-dir=/tmp/warren-prof bench/run.ts --only b --rounds 3 --no-heap --no-example
 *   node bench/profile-summary.ts /tmp/warren-prof/<file>.cpuprofile [top]
 */
import { readFileSync } from 'node:fs';

interface ProfileNode {
  readonly id: number;
  readonly callFrame: { functionName: string; url: string; lineNumber: number };
  readonly children?: readonly number[];
}
interface Profile {
  readonly nodes: readonly ProfileNode[];
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
}

const [file, topArg] = process.argv.slice(2);
if (!file) {
  process.stderr.write('usage: node bench/profile-summary.ts <file.cpuprofile> [top]\n');
  process.exit(2);
}
const top = Number(topArg ?? 30);
const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;
const byId = new Map(profile.nodes.map((node) => [node.id, node]));
const parent = new Map<number, number>();
for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);

function area(url: string, name: string): string {
  if (name.startsWith('(')) return name;
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pkg) return pkg[1] as string;
  const ours = /\/(runtime|bench|actors|config)\/(.*)$/.exec(url);
  if (ours) return `${ours[1]}/${ours[2]}`;
  if (url.startsWith('node:')) return url;
  return url === '' ? '(native)' : url;
}
const label = (node: ProfileNode) => {
  const { functionName, url, lineNumber } = node.callFrame;
  return `${functionName || '(anonymous)'} ${area(url, functionName)}:${lineNumber + 1}`;
};

const selfByArea = new Map<string, number>();
const selfByFn = new Map<string, number>();
const inclusiveByFn = new Map<string, number>();
let total = 0;
profile.samples.forEach((id, i) => {
  const delta = profile.timeDeltas[i] ?? 0;
  const node = byId.get(id);
  if (!node || node.callFrame.functionName === '(idle)') return;
  total += delta;
  const a = area(node.callFrame.url, node.callFrame.functionName);
  selfByArea.set(a, (selfByArea.get(a) ?? 0) + delta);
  selfByFn.set(label(node), (selfByFn.get(label(node)) ?? 0) + delta);
  const seen = new Set<string>();
  for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
    const n = byId.get(at);
    if (!n) break;
    const l = label(n);
    if (seen.has(l)) continue;
    seen.add(l);
    inclusiveByFn.set(l, (inclusiveByFn.get(l) ?? 0) + delta);
  }
});

const print = (title: string, map: Map<string, number>, filter: (k: string) => boolean = () => true) => {
  process.stdout.write(`\n${title} (of ${(total / 1000).toFixed(0)} ms busy)\n`);
  for (const [k, v] of [...map]
    .filter(([k]) => filter(k))
    .sort((x, y) => y[1] - x[1])
    .slice(0, top)) {
    process.stdout.write(
      `${((100 * v) / total).toFixed(1).padStart(5)}%  ${(v / 1000).toFixed(0).padStart(6)} ms  ${k}\n`,
    );
  }
};
print('self time by area', selfByArea);
print('self time by function', selfByFn);
print('inclusive time, our runtime functions', inclusiveByFn, (k) => / runtime\//.test(k));
