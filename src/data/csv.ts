/**
 * Kaggle's digit-recognizer CSV: `label,pixel0,...,pixel783` (train.csv) or `pixel0,...,pixel783`
 * (test.csv, no labels). One image per row, 0-255 per pixel, row-major 28x28.
 */
import { Lenet5Error, readInputFile } from '../errors.js';
import { IMAGE_PIXELS } from './dataset.js';
import { badFilesError, type BadFile } from './folder.js';

export interface CsvImages {
  pixels: Uint8Array;
  /** Present when the file has a label column. */
  labels?: Uint8Array;
  count: number;
  /** Rows left out under onBadFile 'skip', as "file:line". */
  badRows: BadFile[];
}

function csvError(file: string, problem: string): Lenet5Error {
  return new Lenet5Error('ERR_LENET5_DATA', `${file}: ${problem}`);
}

/** Reads a Kaggle-format CSV. A malformed row fails the load unless onBadFile is 'skip'. */
export async function readKaggleCsv(file: string, options: { onBadFile?: 'error' | 'skip' } = {}): Promise<CsvImages> {
  const text = (
    await readInputFile(
      file,
      'ERR_LENET5_DATA_NOT_FOUND',
      'Expected a Kaggle digit-recognizer CSV (label,pixel0,...,pixel783).',
      'ERR_LENET5_DATA',
    )
  ).toString('utf8');
  // A spreadsheet's UTF-8 byte order mark is not part of the first column's name.
  const lines = text.replace(/^\uFEFF/, '').split(/\r?\n/);
  const header = lines[0].split(',').map((h) => h.trim().replace(/^"|"$/g, ''));
  const labelled = header[0] === 'label';
  const pixelColumns = header.length - (labelled ? 1 : 0);
  if (pixelColumns !== IMAGE_PIXELS || header[labelled ? 1 : 0] !== 'pixel0') {
    throw csvError(
      file,
      `has the header "${lines[0].slice(0, 60)}..." with ${header.length} columns; expected Kaggle's digit-recognizer layout: label,pixel0,...,pixel783 (785 columns) or pixel0,...,pixel783 (784).`,
    );
  }
  const rows = lines.slice(1).filter((line) => line.trim() !== '');
  const pixels = new Uint8Array(rows.length * IMAGE_PIXELS);
  const labels = labelled ? new Uint8Array(rows.length) : undefined;
  const badRows: BadFile[] = [];
  let count = 0;
  let lineNumber = 1;
  for (const line of lines.slice(1)) {
    lineNumber++;
    if (line.trim() === '') continue;
    const cells = line.split(',');
    // Decimal digits only: Number() would also take "" (an empty cell) as 0, and "0x1F" or "1e2".
    const badCell = cells.find((cell) => !/^\d{1,3}$/.test(cell) || Number(cell) > 255);
    const bad =
      cells.length !== header.length
        ? `has ${cells.length} columns; the header has ${header.length}`
        : badCell !== undefined
          ? `holds ${JSON.stringify(badCell)}; expected integers from 0 to 255 (decimal digits)`
          : undefined;
    if (bad) {
      badRows.push({ path: `${file}:${lineNumber}`, reason: `line ${lineNumber} ${bad}` });
      continue;
    }
    const values = cells.map(Number);
    if (labels) labels[count] = values[0];
    pixels.set(labelled ? values.slice(1) : values, count * IMAGE_PIXELS);
    count++;
  }
  if (badRows.length > 0 && (options.onBadFile ?? 'error') === 'error') throw badFilesError(badRows);
  if (count === 0) throw csvError(file, 'has no image rows below its header.');
  return { pixels: pixels.subarray(0, count * IMAGE_PIXELS), labels: labels?.subarray(0, count), count, badRows };
}
