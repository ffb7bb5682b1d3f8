/** Loading models for the commands, saying in one line (on stderr, so --json output stays one object) what a load adapted. */
import { constants } from 'node:fs';
import { open } from 'node:fs/promises';
import { LeNet5 } from '../model.js';
import type { InspectResult } from '../pth/load.js';
import { INT8_FORMAT_VERSION, INT8_MAGIC, isInt8Model, readInt8Model, storedTensors } from '../quantize/file.js';
import { ACTIVATIONS } from '../quantize/int8.js';
import { QuantizedLeNet5 } from '../quantize/model.js';

/** One stderr line when the file's keys carried a wrapper prefix that was removed. */
export function noteStrippedPrefix(path: string, model: LeNet5): void {
  const prefix = model.loadResult?.strippedPrefix;
  if (prefix)
    process.stderr.write(
      `lenet5: ${path}: removed the prefix "${prefix}" from every key (saved from a wrapped model: nn.DataParallel, DDP or torch.compile)\n`,
    );
}

/** Whether `path` starts like an int8 model (lenet5 quantize); false when it cannot be read (the float loader then says why). */
export async function startsLikeInt8Model(path: string): Promise<boolean> {
  try {
    // Non-blocking, as readInputFile opens: a FIFO must not hang the command here.
    const file = await open(path, constants.O_RDONLY | constants.O_NONBLOCK);
    try {
      const head = Buffer.alloc(INT8_MAGIC.length);
      await file.read(head, 0, head.length, 0);
      return isInt8Model(head);
    } finally {
      await file.close();
    }
  } catch {
    return false;
  }
}

/** An int8 model file as a QuantizedLeNet5 (it runs on the CPU; the options are for float models), else LeNet5.load then noteStrippedPrefix. */
export async function loadModel(path: string, options: Parameters<typeof LeNet5.load>[1]): Promise<LeNet5 | QuantizedLeNet5> {
  if (await startsLikeInt8Model(path)) return QuantizedLeNet5.load(path);
  return loadFloatModel(path, options);
}

/** LeNet5.load, then noteStrippedPrefix. */
export async function loadFloatModel(path: string, options: Parameters<typeof LeNet5.load>[1]): Promise<LeNet5> {
  const model = await LeNet5.load(path, options);
  noteStrippedPrefix(path, model);
  return model;
}

/** What lenet5 inspect shows of an int8 model: its tensors as stored, and its activation scales and calibration as scalars. */
export async function inspectInt8Model(path: string): Promise<InspectResult> {
  const { network, info } = await readInt8Model(path);
  return {
    path,
    format: `lenet5-libtorch int8 model, version ${INT8_FORMAT_VERSION} (lenet5 quantize)`,
    records: [],
    scalars: {
      ...Object.fromEntries(ACTIVATIONS.map((a) => [`${a}_scale`, network.activationScales[a]])),
      calibration_method: info.calibration.method,
      calibration_images: info.calibration.images,
    },
    tensors: storedTensors(network).map(({ name, dtype, shape }) => ({ name, dtype, shape })),
    shared: [],
  };
}
