#!/usr/bin/env node
// Checks that a cross-built arm64 addon's engine kernels run on NEON: disassembles it and counts,
// in the kernel table's functions (namespace lenet5::engine::baseline, named "neon" on arm64), the
// multiply-adds on four float lanes (fmla vD.4s) and the scalar ones (fmadd sD). Prints the counts;
// fails when there is no vector multiply-add. Used by scripts/check-arm64.sh.
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
let functions = 0,
  vector = 0,
  scalar = 0,
  inTable = false;
for (const line of listing.split('\n')) {
  const header = /^[0-9a-f]+ <(.*)>:$/.exec(line);
  if (header) {
    inTable = header[1].startsWith('lenet5::engine::baseline::');
    if (inTable) functions++;
  } else if (inTable) {
    if (/\tfmla\s+v\d+\.4s/.test(line)) vector++;
    else if (/\tfmadd\s+s\d+/.test(line)) scalar++;
  }
}
console.log(`neon-report: engine kernels: ${functions} functions, ${vector} NEON fmla .4s, ${scalar} scalar fmadd`);
if (vector === 0) {
  console.error(`neon-report: the engine kernels in ${addon} have no NEON multiply-add`);
  process.exit(1);
}
