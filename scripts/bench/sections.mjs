// BENCHMARKS.md holds sections written by different scripts (npm run bench, npm run bench:serve);
// each rewrites only its own section, marked <!-- name:start --> ... <!-- name:end -->.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';

const markers = (name) => [`<!-- ${name}:start -->`, `<!-- ${name}:end -->`];

/** The marked section `name` of the file (markers included), or '' when it has none. */
export function readSection(file, name) {
  const text = existsSync(file) ? readFileSync(file, 'utf8') : '';
  const [start, end] = markers(name);
  const from = text.indexOf(start);
  const to = text.indexOf(end);
  return from >= 0 && to > from ? text.slice(from, to + end.length) : '';
}

/** Replaces section `name` with `lines`, or appends it when the file has none. */
export function writeSection(file, name, lines) {
  const text = existsSync(file) ? readFileSync(file, 'utf8') : '# Benchmarks\n';
  const [start, end] = markers(name);
  const section = [start, ...lines, end].join('\n');
  const old = readSection(file, name);
  writeFileSync(file, old ? text.replace(old, section) : `${text.trimEnd()}\n\n${section}\n`);
}
