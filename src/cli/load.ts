/** Loading models for the commands, saying in one line (on stderr, so --json output stays one object) what a load adapted. */
import { LeNet5 } from '../model.js';

/** One stderr line when the file's keys carried a wrapper prefix that was removed. */
export function noteStrippedPrefix(path: string, model: LeNet5): void {
  const prefix = model.loadResult?.strippedPrefix;
  if (prefix)
    process.stderr.write(
      `lenet5: ${path}: removed the prefix "${prefix}" from every key (saved from a wrapped model: nn.DataParallel, DDP or torch.compile)\n`,
    );
}

/** LeNet5.load, then noteStrippedPrefix. */
export async function loadModel(path: string, options: Parameters<typeof LeNet5.load>[1]): Promise<LeNet5> {
  const model = await LeNet5.load(path, options);
  noteStrippedPrefix(path, model);
  return model;
}
