// docs/cli.md against the command itself: every flag that `lenet5 <command> --help` prints is in that
// command's section of cli.md, and every flag cli.md's tables give a command is one its --help knows.
// A flag added, renamed or dropped in src/cli/ without the documentation fails here.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
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
  return [...new Set([...options.matchAll(/^\s+(?:-\w, )?(--[a-z][a-z-]*)/gm)].map((match) => match[1]))].filter(
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
  return [...new Set(firstCells.flatMap((cell) => [...cell.matchAll(/`(--[a-z][a-z-]*)/g)].map((match) => match[1])))];
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
