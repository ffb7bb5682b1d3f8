// The documentation as a newcomer meets it: every code block marked as an example in README.md and
// docs/*.md runs, in order, in a fresh project (made by `npm init -y`, so a plain .js file is CommonJS), with node_modules/lenet5-libtorch linking this clone as an install would
// place it. A pasted example therefore cannot rot. The same files must name no path of this machine.
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { pythons, requirePython, root, tempDir } from './helpers.js';

/** The documents a reader gets: README.md first, then docs/ in name order. */
const documents = [
  'README.md',
  ...readdirSync(join(root, 'docs'))
    .filter((name) => name.endsWith('.md'))
    .sort()
    .map((name) => `docs/${name}`),
];

interface Example {
  /** Where the block is, for failure messages: docs/python.md:42. */
  where: string;
  /** The file the block becomes in the project. */
  file: string;
  language: 'js' | 'python' | 'sh';
  code: string;
}

const EXTENSIONS = { js: '.mjs', python: '.py', sh: '.sh' } as const;

/** Blocks whose fence follows `<!-- example -->` or `<!-- example: FILE -->` on the line before. */
function examples(): Example[] {
  const found: Example[] = [];
  for (const document of documents) {
    const lines = readFileSync(join(root, document), 'utf8').split('\n');
    lines.forEach((line, index) => {
      const marker = /^<!-- example(?::\s*(\S+))?\s*-->$/.exec(line.trim());
      if (!marker) return;
      const where = `${document}:${index + 1}`;
      const fence = /^```(\w+)\s*$/.exec(lines[index + 1] ?? '');
      if (!fence) throw new Error(`${where}: an example marker must be followed by a fenced code block with a language`);
      const language = fence[1];
      if (language !== 'js' && language !== 'python' && language !== 'sh') {
        throw new Error(`${where}: examples run as js, python or sh, not ${language}`);
      }
      const end = lines.findIndex((candidate, at) => at > index + 1 && candidate.startsWith('```'));
      if (end < 0) throw new Error(`${where}: the example's code block is not closed`);
      const file = marker[1] ?? `example-${found.length + 1}${EXTENSIONS[language]}`;
      found.push({ where, file, language, code: lines.slice(index + 2, end).join('\n') + '\n' });
    });
  }
  return found;
}

/** A project as `npm init -y` leaves it, with the package installed as a link to this clone. */
function freshProject(): string {
  const dir = tempDir();
  // npm 10.9 and later write "type": "commonjs", which turns off Node's detection of ES module syntax in .js files.
  const init = spawnSync('npm', ['init', '-y'], { cwd: dir, encoding: 'utf8' });
  if (init.status !== 0) throw new Error(`npm init -y failed in ${dir}: ${init.stderr}`);
  mkdirSync(join(dir, 'node_modules/.bin'), { recursive: true });
  symlinkSync(root, join(dir, 'node_modules/lenet5-libtorch'), 'dir');
  // What npm writes for the package's `bin`, so `npx lenet5` runs it from the project, offline.
  const bin = join(dir, 'node_modules/.bin/lenet5');
  writeFileSync(bin, `#!/bin/sh\nexec "${process.execPath}" "${join(root, 'dist/cli/main.js')}" "$@"\n`);
  chmodSync(bin, 0o755);
  return dir;
}

describe('the examples of README.md and docs/', () => {
  const all = examples();
  const project = freshProject();
  const env = {
    ...process.env,
    PATH: `${join(project, 'node_modules/.bin')}:${dirname(process.execPath)}:${process.env.PATH ?? ''}`,
    // One thread per example leaves the other cores to the rest of the machine; no example's numbers are checked.
    LENET5_THREADS: '1',
  };

  it('are marked in the README (ESM, CommonJS, Python and the command line) and in docs/', () => {
    const readme = all.filter((example) => example.where.startsWith('README.md'));
    expect(readme.map((example) => example.file)).toEqual(expect.arrayContaining(['train.mjs', 'predict.js', 'lenet5.py']));
    expect(readme.some((example) => example.language === 'sh')).toBe(true);
    expect(all.some((example) => example.where.startsWith('docs/'))).toBe(true);
    expect(new Set(all.map((example) => example.file)).size, 'each example has a file of its own').toBe(all.length);
  });

  for (const example of all) {
    it(`${example.where} (${example.file}) runs`, () => {
      writeFileSync(join(project, example.file), example.code);
      const [command, args] =
        example.language === 'python'
          ? (requirePython(pythons.current), [pythons.current, [example.file]])
          : example.language === 'sh'
            ? ['bash', ['-euo', 'pipefail', example.file]]
            : [process.execPath, [example.file]];
      const result = spawnSync(command, args, { cwd: project, env, encoding: 'utf8', timeout: 110_000 });
      expect(result.status, `${example.where}\nstdout:\n${result.stdout}\nstderr:\n${result.stderr}`).toBe(0);
    });
  }

  it('leave the files the documents say they leave', () => {
    // README's quick start: the weights and their metadata; deploying.md: the export's metadata names.
    for (const file of ['lenet5_model.pth', 'lenet5_model.json', 'lenet5.pt', 'lenet5.json', 'lenet5.onnx', 'lenet5.onnx.json']) {
      expect(existsSync(join(project, file)), file).toBe(true);
    }
  });
});

describe('README.md and docs/', () => {
  // Paths that exist only on the machine that wrote the text: this clone (and the folder that holds it),
  // the user's home and the temp folder. Write `~/.cache/...`, a relative path, or a name such as DIR instead.
  const parent = dirname(root);
  const forbidden = [root, ...(parent === '/' ? [] : [`${parent}/`]), `${homedir()}/`, `${tmpdir()}/`, '/root/', '/home/'];

  it('name no absolute path of this machine', () => {
    const found: string[] = [];
    for (const document of documents) {
      readFileSync(join(root, document), 'utf8')
        .split('\n')
        .forEach((line, index) => {
          for (const path of forbidden) if (line.includes(path)) found.push(`${document}:${index + 1}: ${path} in "${line.trim()}"`);
        });
    }
    expect(found).toEqual([]);
  });
});
