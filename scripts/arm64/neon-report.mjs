#!/usr/bin/env node
// Checks that a cross-built arm64 addon's kernels run on NEON: disassembles it and counts, in the
// engine's kernel table (namespace lenet5::engine::baseline, named "neon" on arm64), the
// multiply-adds on four float lanes (fmla vD.4s) and the scalar ones (fmadd sD); in the int8 tables,
// the dot products (sdot) of "neondot" and the widening multiplies (smull) of "neon". Prints the
// counts; fails when a table has none of its vector instruction. Used by scripts/check-arm64.sh.
//   node scripts/arm64/neon-report.mjs build/arm64/Release/lenet5_native.node
import { execFileSync } from 'node:child_process';

const addon = process.argv[2];
if (!addon) {
  console.error('usage: neon-report.mjs ADDON.node');
  process.exit(2);
}
const listing = execFileSync('aarch64-linux-gnu-objdump', ['-d', '-C', '--no-show-raw-insn', addon], {
  encoding: 'utf8',
  maxBuffer: 1 << 30,
});
const tables = [
  {
    label: 'engine kernels',
    namespace: 'lenet5::engine::baseline::',
    name: 'NEON fmla .4s',
    vector: /\tfmla\s+v\d+\.4s/,
    scalar: /\tfmadd\s+s\d+/,
  },
  { label: 'int8 neondot kernels', namespace: 'lenet5::engine::int8::neondot::', name: 'sdot', vector: /\tsdot\s+v\d+\.4s/ },
  { label: 'int8 neon kernels', namespace: 'lenet5::engine::int8::neon::', name: 'smull .8h', vector: /\tsmull2?\s+v\d+\.8h/ },
].map((table) => ({ ...table, functions: 0, vectors: 0, scalars: 0 }));
let current;
for (const line of listing.split('\n')) {
  const header = /^[0-9a-f]+ <(.*)>:$/.exec(line);
  if (header) {
    current = tables.find((table) => header[1].startsWith(table.namespace));
    if (current) current.functions++;
  } else if (current) {
    if (current.vector.test(line)) current.vectors++;
    else if (current.scalar?.test(line)) current.scalars++;
  }
}
let failed = false;
for (const { label, name, functions, vectors, scalars, scalar } of tables) {
  console.log(`neon-report: ${label}: ${functions} functions, ${vectors} ${name}` + (scalar ? `, ${scalars} scalar fmadd` : ''));
  if (vectors === 0) {
    console.error(`neon-report: the ${label} in ${addon} have no ${name}`);
    failed = true;
  }
}
if (failed) process.exit(1);
