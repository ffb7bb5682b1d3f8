import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { LeNet5, inspect } from '../src/index.js';
import { expectCode, pythons, requirePython, root, tempDir } from './helpers.js';

const dir = tempDir();
requirePython(pythons.current);

// Every fixture from one Python start (importing torch takes seconds); each unsafe kind, if plain pickle
// ran it, would create KIND.executed beside its file.
const KINDS = ['no-data-pkl', 'short-storage', 'legacy', 'torchscript', 'bad-opcode', 'protocol-4'];
// Pickles that would run code, and the callable each refusal must name.
const UNSAFE: [string, RegExp][] = [
  ['os-system', /posix\.system|os\.system/],
  ['posix-system', /posix\.system/],
  ['eval', /(__builtin__|builtins)\.eval/],
  ['exec', /(__builtin__|builtins)\.exec/],
  ['subprocess', /(subprocess|commands)\.call/],
  ['nested-reduce', /(__builtin__|builtins)\.(getattr|__import__)/],
  ['inst', /os\.system/],
  ['newobj', /__main__\.Evil|NEWOBJ/],
];
const UNSAFE_KINDS = UNSAFE.map(([kind]) => kind);
execFileSync(pythons.current, [join(root, 'test/python/bad_files.py'), '--many', dir, ...KINDS, ...UNSAFE_KINDS], {
  stdio: 'pipe',
  env: { ...process.env, PYTHONWARNINGS: 'ignore' },
});

function badFile(kind: string): { path: string; marker: string } {
  if (!KINDS.includes(kind) && !UNSAFE_KINDS.includes(kind)) throw new Error(`no fixture ${kind}`);
  return { path: join(dir, `${kind}.pth`), marker: join(dir, `${kind}.executed`) };
}

async function goodFile(): Promise<Buffer> {
  const path = join(dir, 'good.pth');
  await new LeNet5({ seed: 1 }).save(path);
  return readFileSync(path);
}

describe('.pth loader on broken files', () => {
  it('missing file', async () => {
    const error = await expectCode(LeNet5.load(join(dir, 'nope.pth')), 'ERR_LENET5_PTH_NOT_FOUND');
    expect(error.message).toContain('No such file');
  });

  it('not a zip', async () => {
    const path = join(dir, 'text.pth');
    writeFileSync(path, 'hello, this is not a model');
    const error = await expectCode(LeNet5.load(path), 'ERR_LENET5_PTH_FORMAT');
    expect(error.message).toContain('is not a readable PyTorch file');
  });

  it('truncated at many points', async () => {
    const good = await goodFile();
    for (const length of [0, 10, 100, 1000, good.length / 2, good.length - 30, good.length - 1]) {
      const path = join(dir, `truncated-${length}.pth`);
      writeFileSync(path, good.subarray(0, Math.floor(length)));
      await expectCode(LeNet5.load(path), 'ERR_LENET5_PTH_FORMAT', `length ${length}`);
    }
  });

  it('CRC mismatch in a storage record', async () => {
    const good = await goodFile();
    const name = good.indexOf('archive/data/0');
    const start = name + Buffer.byteLength('archive/data/0') + good.readUInt16LE(name - 2);
    const bad = Buffer.from(good);
    bad[start + 5] ^= 0xff;
    const path = join(dir, 'crc.pth');
    writeFileSync(path, bad);
    const error = await expectCode(LeNet5.load(path), 'ERR_LENET5_PTH_FORMAT');
    expect(error.message).toContain('fails its CRC check');
  });

  it('zip without data.pkl', async () => {
    const error = await expectCode(LeNet5.load(badFile('no-data-pkl').path), 'ERR_LENET5_PTH_FORMAT');
    expect(error.message).toContain('has no data.pkl record');
  });

  it('storage record shorter than its tensor needs', async () => {
    const error = await expectCode(LeNet5.load(badFile('short-storage').path), 'ERR_LENET5_PTH_FORMAT');
    expect(error.message).toMatch(/holds 10 bytes, but its \d+ float32 elements need \d+/);
  });

  it('legacy pre-1.6 format gets instructions to re-save', async () => {
    const error = await expectCode(LeNet5.load(badFile('legacy').path), 'ERR_LENET5_PTH_LEGACY');
    expect(error.message).toContain('torch.save(torch.load(');
  });

  it('TorchScript archives are named as such', async () => {
    const error = await expectCode(inspect(badFile('torchscript').path), 'ERR_LENET5_PTH_FORMAT');
    expect(error.message).toContain('is a TorchScript archive');
  });

  it('unknown pickle opcodes', async () => {
    const error = await expectCode(LeNet5.load(badFile('bad-opcode').path), 'ERR_LENET5_PTH_FORMAT');
    expect(error.message).toContain('unknown or unsupported opcode 0xff');
  });
});

describe('.pth loader refuses pickles that would run code', () => {
  for (const [kind, named] of UNSAFE) {
    it(`${kind}: refused by name, nothing executed`, async () => {
      const { path, marker } = badFile(kind);
      for (const load of [() => LeNet5.load(path), () => inspect(path)]) {
        const error = await expectCode(load(), 'ERR_LENET5_PTH_UNSAFE');
        expect(error.message).toMatch(named);
        expect(error.message).toContain('Nothing was executed');
      }
      expect(existsSync(marker)).toBe(false);
    });
  }

  it("a protocol-4 pickle (FRAME, STACK_GLOBAL) is refused at its first opcode outside PyTorch's weights-only set, nothing executed", async () => {
    const { path, marker } = badFile('protocol-4');
    const error = await expectCode(LeNet5.load(path), 'ERR_LENET5_PTH_FORMAT');
    expect(error.message).toContain('unknown or unsupported opcode 0x95 (FRAME, pickle protocol 4) at offset 2');
    expect(existsSync(marker)).toBe(false);
  });

  it('the os.system file really would run code under plain pickle (so the test above can fail)', () => {
    const { path, marker } = badFile('posix-system');
    execFileSync(
      pythons.current,
      ['-c', `import zipfile, pickle; pickle.loads(zipfile.ZipFile(${JSON.stringify(path)}).read('archive/data.pkl'))`],
      { stdio: 'ignore' },
    );
    expect(existsSync(marker)).toBe(true);
  });
});
