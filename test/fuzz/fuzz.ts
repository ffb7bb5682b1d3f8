/**
 * Fuzzing of the two parsers that read user files: the .pth loader (zip + restricted unpickler +
 * tensor rebuild) and the IDX reader. Inputs are mutations of valid files and generated pickles,
 * from a seeded PRNG: a failure prints its seed and index, and replays with the same seed.
 *
 * A run passes when every input either parses or is rejected with a Lenet5Error carrying a code:
 * no other exception type (TypeError, RangeError, ...), no crash, no hang.
 */
import { readFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import yazl from 'yazl';
import { Lenet5Error } from '../../src/errors.js';
import { decompressIdx, parseIdx } from '../../src/data/idx.js';
import { stateDictOf } from '../../src/pth/load.js';
import { listTensors, parsePth } from '../../src/pth/read.js';
import { rng } from '../helpers.js';

export interface FuzzResult {
  inputs: number;
  parsed: number;
  rejected: Record<string, number>;
  failures: { index: number; kind: string; error: string }[];
}

type Random = () => number;

const int = (random: Random, n: number) => Math.floor(random() * n);

function zipOf(records: Record<string, Uint8Array>): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const zip = new yazl.ZipFile();
    for (const [name, data] of Object.entries(records)) zip.addBuffer(Buffer.from(data), name, { compress: false });
    const chunks: Buffer[] = [];
    zip.outputStream
      .on('data', (c: Buffer) => chunks.push(c))
      .on('end', () => resolve(Buffer.concat(chunks)))
      .on('error', reject);
    zip.end();
  });
}

const OPCODES = [
  ...'(0123NIJKLMFGSTUVXB]al)tud}sgphqjrRbc.Q',
  '\x80',
  '\x85',
  '\x86',
  '\x87',
  '\x88',
  '\x89',
  '\x8a',
  '\x8c',
  '\x8f',
  '\x90',
  '\x93',
  '\x94',
  '\x95',
  '\x81',
  '\x92',
  'i',
  'o',
  '\x82',
].map((c) => c.charCodeAt(0));
const NAMES = [
  'collections\nOrderedDict\n',
  'torch._utils\n_rebuild_tensor_v2\n',
  'torch\nFloatStorage\n',
  'os\nsystem\n',
  'builtins\neval\n',
];

/** A random pickle: opcodes with plausible (or absurd) arguments, sometimes deeply nested. */
function randomPickle(random: Random): Uint8Array {
  const out: number[] = [0x80, 2];
  const length = 1 + int(random, 200);
  const nested = random() < 0.1;
  for (let i = 0; i < length; i++) {
    if (nested) {
      out.push(random() < 0.5 ? 0x28 : 0x5d); // deep MARK / EMPTY_LIST stacks
      continue;
    }
    const op = OPCODES[int(random, OPCODES.length)];
    out.push(op);
    if (op === 0x63) out.push(...Buffer.from(NAMES[int(random, NAMES.length)]));
    else if ([0x4b, 0x71, 0x68, 0x43, 0x55, 0x8c, 0x8a].includes(op)) out.push(int(random, 256));
    else if ([0x4a, 0x72, 0x6a, 0x58, 0x42, 0x54].includes(op)) {
      const big = random() < 0.3;
      const value = big ? 0xffffff00 + int(random, 255) : int(random, 64);
      out.push(value & 0xff, (value >> 8) & 0xff, (value >> 16) & 0xff, value >>> 24);
    } else if (op === 0x47 || op === 0x95) for (let b = 0; b < 8; b++) out.push(int(random, 256));
    else if ([0x49, 0x4c, 0x46, 0x53, 0x56, 0x70, 0x67, 0x69].includes(op)) out.push(...Buffer.from(`${int(random, 1000)}\n`));
  }
  out.push(0x2e);
  return Uint8Array.from(out);
}

/** Builds pickle bytes: opcodes as numbers, text as UTF-8, `int32` and `unicode` for their opcodes' arguments. */
class PickleWriter {
  readonly bytes: number[] = [];
  op(...codes: number[]): this {
    for (const code of codes) this.bytes.push(code);
    return this;
  }
  raw(text: string): this {
    for (const byte of Buffer.from(text)) this.bytes.push(byte);
    return this;
  }
  u32(value: number): this {
    return this.op(value & 0xff, (value >> 8) & 0xff, (value >> 16) & 0xff, value >>> 24);
  }
  int(value: number): this {
    return this.op(0x4a).u32(value); // BININT
  }
  unicode(value: string): this {
    return this.op(0x58).u32(Buffer.byteLength(value)).raw(value); // BINUNICODE
  }
  put(index: number): this {
    return this.op(0x72).u32(index); // LONG_BINPUT
  }
  get(index: number): this {
    return this.op(0x6a).u32(index); // LONG_BINGET
  }
  intTuple(values: number[]): this {
    this.op(0x28); // MARK
    for (const value of values) this.int(value);
    return this.op(0x74); // TUPLE
  }
  /** A float32 tensor on storage 0 (which holds `storageNumel` elements), as torch.save writes one. */
  tensor(storageNumel: number, offset: number, size: number[], stride: number[]): this {
    this.raw('ctorch._utils\n_rebuild_tensor_v2\n').op(0x28, 0x28).unicode('storage').raw('ctorch\nFloatStorage\n');
    this.unicode('0').unicode('cpu').int(storageNumel).op(0x74, 0x51); // TUPLE, BINPERSID
    this.int(offset).intTuple(size).intTuple(stride).op(0x89); // requires_grad False
    return this.raw('ccollections\nOrderedDict\n').op(0x29, 0x52, 0x74, 0x52); // hooks; TUPLE; REDUCE
  }
}

/**
 * Pickles whose memo shares objects (issue #21): a DAG of (a, a) tuples, a list holding itself,
 * one tensor under thousands of keys, or thousands of different views of one storage. Parsing,
 * listing and materialising them must stay bounded by the file (and the budget) however deep or
 * wide they are.
 */
function sharedPickle(random: Random, storageNumel: number): { kind: string; pickle: Uint8Array } {
  const w = new PickleWriter().op(0x80, 2, 0x7d, 0x28); // PROTO 2, EMPTY_DICT, MARK
  let kind: string;
  switch (int(random, 4)) {
    case 0: {
      const depth = 1 + int(random, 60);
      w.unicode('x').op(0x5d).put(0); // EMPTY_LIST
      // The previous level is on the stack; pair it with itself from the memo, as pickle writes (a, a).
      for (let level = 1; level <= depth; level++)
        w.get(level - 1)
          .op(0x86)
          .put(level); // TUPLE2
      kind = `shared DAG depth ${depth}`;
      break;
    }
    case 1:
      w.unicode('x').op(0x5d).put(0).get(0).op(0x61); // a list that holds itself: EMPTY_LIST, APPEND
      kind = 'shared cycle';
      break;
    case 2: {
      const keys = 1 + int(random, 5000);
      w.unicode('k0').tensor(storageNumel, 0, [storageNumel], [1]).put(0);
      for (let k = 1; k < keys; k++) w.unicode(`k${k}`).get(0);
      kind = `shared tensor x${keys}`;
      break;
    }
    default: {
      const views = 1 + int(random, 2000);
      const step = 1 + int(random, 3);
      for (let v = 0; v < views; v++) {
        const offset = int(random, storageNumel / 2);
        w.unicode(`v${v}`).tensor(storageNumel, offset, [Math.floor((storageNumel - offset - 1) / step) + 1], [step]);
      }
      kind = `amplified views x${views}`;
    }
  }
  return { kind, pickle: Uint8Array.from(w.op(0x75, 0x2e).bytes) }; // SETITEMS, STOP
}

function mutate(random: Random, seedFile: Buffer): { kind: string; bytes: Buffer } {
  const bytes = Buffer.from(seedFile);
  switch (int(random, 5)) {
    case 0: {
      const flips = 1 + int(random, 8);
      for (let i = 0; i < flips; i++) bytes[int(random, bytes.length)] ^= 1 << int(random, 8);
      return { kind: 'bit flips', bytes };
    }
    case 1:
      return { kind: 'truncation', bytes: bytes.subarray(0, int(random, bytes.length)) };
    case 2: {
      // Inflate a size or dimension field: a large 32-bit value at a random offset.
      const at = int(random, Math.max(1, bytes.length - 4));
      bytes.writeUInt32LE([0xffffffff, 0x7fffffff, 0x10000000, 60000 * 784][int(random, 4)], at);
      if (random() < 0.5 && at + 8 <= bytes.length) bytes.writeUInt32BE(0xfffffff0, at + 4);
      return { kind: 'inflated size', bytes };
    }
    case 3: {
      // Swap two chunks: shuffles zip records and headers around.
      const a = int(random, bytes.length);
      const b = int(random, bytes.length);
      const n = 1 + int(random, Math.min(256, bytes.length - Math.max(a, b)));
      const chunk = Buffer.from(bytes.subarray(a, a + n));
      bytes.copy(bytes, a, b, b + n);
      chunk.copy(bytes, b);
      return { kind: 'shuffled chunks', bytes };
    }
    default: {
      const at = int(random, bytes.length);
      const junk = Buffer.from(Array.from({ length: 1 + int(random, 64) }, () => int(random, 256)));
      return { kind: 'inserted bytes', bytes: Buffer.concat([bytes.subarray(0, at), junk, bytes.subarray(at)]) };
    }
  }
}

/** A smaller materialisation budget than the reader's, so amplified inputs reach it quickly. */
const FUZZ_LIMITS = { recordBytes: 1 << 30, materialisedBytes: 64 << 20 };

async function parseAll(bytes: Buffer): Promise<void> {
  const file = await parsePth('fuzz.pth', bytes, FUZZ_LIMITS);
  listTensors(file.root);
  let tensors;
  try {
    tensors = stateDictOf(file).tensors;
  } catch (error) {
    if (!(error instanceof Lenet5Error && error.code === 'ERR_LENET5_STATE_DICT')) throw error;
    return;
  }
  for (const tensor of tensors) void tensor.values.length;
}

function idxSeed(): Buffer {
  const count = 8;
  const header = Buffer.alloc(16);
  header.writeUInt32BE(0x803, 0);
  header.writeUInt32BE(count, 4);
  header.writeUInt32BE(28, 8);
  header.writeUInt32BE(28, 12);
  return Buffer.concat([header, Buffer.alloc(count * 784, 7)]);
}

/** The storage the shared-reference pickles use: 1 MiB (262,144 float32 zeros). */
const SHARED_STORAGE = Buffer.alloc(1 << 20);

/** Runs `inputs` fuzz cases from `seed`. `pthSeeds` are valid .pth files to mutate. */
export async function runFuzz(seed: number, inputs: number, pthSeeds: string[]): Promise<FuzzResult> {
  const random = rng(seed);
  const seeds = pthSeeds.map((path) => readFileSync(path));
  const template = seeds[0];
  const result: FuzzResult = { inputs, parsed: 0, rejected: {}, failures: [] };
  const idx = idxSeed();
  for (let index = 0; index < inputs; index++) {
    const choice = random();
    let kind: string;
    let run: () => Promise<void> | void;
    if (choice < 0.55) {
      const mutation = mutate(random, seeds[int(random, seeds.length)]);
      kind = `pth ${mutation.kind}`;
      run = () => parseAll(mutation.bytes);
    } else if (choice < 0.75) {
      const pickle = randomPickle(random);
      kind = 'pth random pickle';
      run = async () =>
        parseAll(
          await zipOf({ 'archive/data.pkl': pickle, 'archive/data/0': template.subarray(0, 64), 'archive/version': Buffer.from('3\n') }),
        );
    } else if (choice < 0.8) {
      const shared = sharedPickle(random, SHARED_STORAGE.length / 4);
      kind = `pth ${shared.kind}`;
      run = async () =>
        parseAll(
          await zipOf({ 'archive/data.pkl': shared.pickle, 'archive/data/0': SHARED_STORAGE, 'archive/version': Buffer.from('3\n') }),
        );
    } else {
      const mutation = mutate(random, random() < 0.3 ? gzipSync(idx) : idx);
      kind = `idx ${mutation.kind}`;
      run = async () => {
        parseIdx('fuzz-idx', await decompressIdx('fuzz-idx', mutation.bytes), 3);
      };
    }
    try {
      await run();
      result.parsed++;
    } catch (error) {
      if (error instanceof Lenet5Error && error.code) {
        result.rejected[error.code] = (result.rejected[error.code] ?? 0) + 1;
      } else {
        result.failures.push({ index, kind, error: error instanceof Error ? `${error.name}: ${error.message}` : String(error) });
      }
    }
  }
  return result;
}
