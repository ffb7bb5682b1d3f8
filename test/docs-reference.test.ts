// The reference documentation against the code it describes, so neither can change alone:
// - docs/cli.md: every flag that `lenet5 <command> --help` prints is in that command's section, and every
//   flag its tables give a command is one that --help knows;
// - docs/api.md: every export of the package and every error code is there;
// - README.md and docs/*.md: every relative link reaches a file, and every #anchor one of its headings.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { root } from './helpers.js';

const cliDoc = readFileSync(join(root, 'docs/cli.md'), 'utf8');

function help(...args: string[]): string {
  const result = spawnSync(process.execPath, [join(root, 'dist/cli/main.js'), ...args, '--help'], { encoding: 'utf8' });
  expect(result.status, result.stderr).toBe(0);
  return result.stdout;
}

/** The long flags of an "Options:" list; help for every command is documented once, under "Common to every command". */
function helpFlags(text: string): string[] {
  const options = text.slice(text.indexOf('Options:'));
  return [...new Set([...options.matchAll(/^\s+(?:-\w, )?(--[a-z][a-z0-9-]*)/gm)].map((match) => match[1]))].filter(
    (flag) => flag !== '--help',
  );
}

/** The text of cli.md from "## `lenet5 NAME`" to the next "## ". */
function section(name: string): string {
  const start = cliDoc.indexOf(`## \`lenet5 ${name}\``);
  expect(start, `docs/cli.md has no section "## \`lenet5 ${name}\`"`).toBeGreaterThanOrEqual(0);
  const end = cliDoc.indexOf('\n## ', start + 1);
  return cliDoc.slice(start, end < 0 ? undefined : end);
}

/** The flags a section's tables list in their first column. */
function documentedFlags(text: string): string[] {
  const firstCells = [...text.matchAll(/^\| ([^|]*(?:\\\|[^|]*)*) \|/gm)].map((match) => match[1]);
  return [...new Set(firstCells.flatMap((cell) => [...cell.matchAll(/`(--[a-z][a-z0-9-]*)/g)].map((match) => match[1])))];
}

const commands = [...help().matchAll(/^ {2}([a-z]+) \[options\]/gm)].map((match) => match[1]);

describe('docs/cli.md', () => {
  it('has a section for every command of lenet5 --help', () => {
    expect(commands).toEqual(expect.arrayContaining(['train', 'evaluate', 'predict', 'inspect', 'export', 'serve', 'build', 'info']));
    for (const command of commands) section(command);
  });

  it('documents the options every command shares', () => {
    const common = cliDoc.slice(cliDoc.indexOf('## Common to every command'), cliDoc.indexOf('## `lenet5 train`'));
    for (const flag of ['--help', '-h', '--json', '--version', '-V']) expect(common).toContain(`\`${flag}\``);
  });

  for (const command of commands) {
    it(`lists every flag of lenet5 ${command} --help, and no flag it does not have`, () => {
      const printed = helpFlags(help(command));
      const text = section(command);
      const missing = printed.filter((flag) => !text.includes(`\`${flag}`));
      expect(missing, `flags of lenet5 ${command} --help missing from its section of docs/cli.md`).toEqual([]);
      const unknown = documentedFlags(text).filter((flag) => !printed.includes(flag));
      expect(unknown, `flags docs/cli.md gives lenet5 ${command} that its --help does not know`).toEqual([]);
    });
  }
});

describe('docs/api.md', () => {
  const apiDoc = readFileSync(join(root, 'docs/api.md'), 'utf8');

  it('names every export of the package', () => {
    const index = readFileSync(join(root, 'src/index.ts'), 'utf8');
    const lists = [...index.matchAll(/^export (?:type )?\{([^}]*)\}/gm)].flatMap((match) => match[1].split(','));
    const names = [...lists.map((name) => name.trim()), ...[...index.matchAll(/^export \* as (\w+)/gm)].map((match) => match[1])];
    expect(names.length).toBeGreaterThan(30);
    expect(names.filter((name) => name && !new RegExp(`\\b${name}\\b`).test(apiDoc))).toEqual([]);
  });

  it('lists every error code in its Error codes table', () => {
    const codes = [...readFileSync(join(root, 'src/errors.ts'), 'utf8').matchAll(/\| '(ERR_LENET5_[A-Z_]+)'/g)].map((match) => match[1]);
    expect(codes.length).toBeGreaterThan(30);
    const table = apiDoc.slice(apiDoc.indexOf('## Error codes'));
    expect(codes.filter((code) => !table.includes(`\`${code}\``))).toEqual([]);
  });
});

/** GitHub's anchor for a heading: lower case, punctuation dropped, spaces as hyphens. */
function slug(heading: string): string {
  return heading
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\s_-]/gu, '')
    .replace(/\s/g, '-');
}

function anchors(file: string): Set<string> {
  const text = readFileSync(file, 'utf8').replace(/^```[\s\S]*?^```/gm, '');
  return new Set([...text.matchAll(/^#{1,6} (.+)$/gm)].map((match) => slug(match[1])));
}

describe('links of README.md and docs/', () => {
  const documents = [
    'README.md',
    'ARCHITECTURE.md',
    ...readdirSync(join(root, 'docs'))
      .filter((name) => name.endsWith('.md'))
      .map((name) => `docs/${name}`),
  ];

  it('reach a file, and a heading of it', () => {
    const broken: string[] = [];
    for (const document of documents) {
      const path = join(root, document);
      const text = readFileSync(path, 'utf8').replace(/^```[\s\S]*?^```/gm, '');
      for (const [, target] of text.matchAll(/\]\(([^)\s]+)\)/g)) {
        if (/^[a-z]+:/.test(target)) continue;
        const [file, anchor] = target.split('#');
        const linked = file ? join(dirname(path), file) : path;
        if (!existsSync(linked)) broken.push(`${document}: ${target} (no file ${relative(root, linked)})`);
        else if (anchor !== undefined && linked.endsWith('.md') && !anchors(linked).has(anchor))
          broken.push(`${document}: ${target} (no such heading)`);
      }
    }
    expect(broken).toEqual([]);
  });
});
