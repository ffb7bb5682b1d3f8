/** Inspecting .pth files (reading lives in read.ts, the unpickler in unpickler.ts, writing in write.ts). */
import { describeFormat, listTensors, readPth, topLevelScalars, type TensorInfo } from './read.js';

export type { TensorInfo } from './read.js';

export interface InspectResult {
  path: string;
  format: string;
  records: string[];
  /** epoch, loss, ... when the file is a checkpoint. */
  scalars: Record<string, number | string | boolean | null>;
  tensors: TensorInfo[];
}

/** Lists a .pth file's tensors (name, dtype, shape) and format without building a model. */
export async function inspect(path: string): Promise<InspectResult> {
  const file = await readPth(path);
  return { path, format: describeFormat(file), records: file.records, scalars: topLevelScalars(file.root), tensors: listTensors(file.root) };
}
