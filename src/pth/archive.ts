/**
 * The zip container of PyTorch's serialization (torch.save since 1.6): records under one
 * top-level folder of any name (archive/, or the file's stem for older writers): data.pkl, data/<key>
 * storages, and bookkeeping records (version, byteorder, .format_version, .storage_alignment,
 * .data/serialization_id) that we tolerate. yauzl parses the zip; we check every record's CRC.
 */
import { crc32 } from 'node:zlib';
import yauzl from 'yauzl';
import { Lenet5Error } from '../errors.js';
import { formatError } from './values.js';

export interface Archive {
  /** The folder all records sit in, with a trailing slash ('' when records are at the top). */
  prefix: string;
  records: Map<string, Uint8Array>;
}

/** Deflate cannot expand data more than about 1032:1; a record claiming more is corrupt. */
const MAX_DEFLATE_RATIO = 1100;

const LEGACY_MAGIC = Uint8Array.from([0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19]);

function startsWith(bytes: Uint8Array, prefix: Uint8Array): boolean {
  return bytes.length >= prefix.length && prefix.every((b, i) => bytes[i] === b);
}

function openZip(file: string, bytes: Buffer): Promise<yauzl.ZipFile> {
  return new Promise((resolve, reject) => {
    yauzl.fromBuffer(bytes, { lazyEntries: true, validateEntrySizes: true, strictFileNames: false }, (error, zip) => {
      if (error || !zip) reject(notAZip(file, error));
      else resolve(zip);
    });
  });
}

function notAZip(file: string, cause: unknown): Lenet5Error {
  return new Lenet5Error(
    'ERR_LENET5_PTH_FORMAT',
    `${file} is not a readable PyTorch file: ${(cause as Error | undefined)?.message.replace(/\.$/, '') ?? 'not a zip archive'}. ` +
      'Expected the zip format torch.save writes (PyTorch 1.6 and later). If the file was cut short, copy or save it again.',
    { cause },
  );
}

function readEntry(zip: yauzl.ZipFile, entry: yauzl.Entry): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    zip.openReadStream(entry, (error, stream) => {
      if (error || !stream) return reject(error);
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('error', reject);
      stream.on('end', () => resolve(Buffer.concat(chunks)));
    });
  });
}

/** Reads every record; their inflated sizes together may not exceed `maxRecordBytes` (checked before each is read). */
export async function readArchive(file: string, bytes: Buffer, maxRecordBytes: number): Promise<Archive> {
  if (startsWith(bytes, LEGACY_MAGIC)) {
    throw new Lenet5Error(
      'ERR_LENET5_PTH_LEGACY',
      `${file} uses PyTorch's legacy (pre-1.6, non-zip) format, which this package does not read. ` +
        "Re-save it with any PyTorch from 1.6 on: python -c \"import torch; torch.save(torch.load('old.pth'), 'new.pth')\"",
    );
  }
  const zip = await openZip(file, bytes);
  const records = new Map<string, Uint8Array>();
  let recordBytes = 0;
  try {
    await new Promise<void>((resolve, reject) => {
      zip.on('error', (error: Error) => reject(notAZip(file, error)));
      zip.on('end', () => resolve());
      zip.on('entry', (entry: yauzl.Entry) => {
        if (entry.fileName.endsWith('/')) return zip.readEntry();
        if (entry.compressionMethod !== 0 && entry.uncompressedSize > entry.compressedSize * MAX_DEFLATE_RATIO) {
          return reject(
            formatError(
              `${file}: record ${entry.fileName} claims ${entry.uncompressedSize} bytes from ${entry.compressedSize} compressed; the file is corrupt.`,
            ),
          );
        }
        recordBytes += entry.uncompressedSize;
        if (recordBytes > maxRecordBytes) {
          return reject(
            new Lenet5Error(
              'ERR_LENET5_PTH_TOO_LARGE',
              `${file}: its records inflate to more than ${maxRecordBytes} bytes (${Math.round(maxRecordBytes / 2 ** 20)} MiB), the most this reader takes; ` +
                `${entry.fileName} alone is ${entry.uncompressedSize}. A LeNet-5 checkpoint is about 1 MiB; check that this is the file you meant.`,
            ),
          );
        }
        if (records.has(entry.fileName))
          return reject(formatError(`${file}: record ${entry.fileName} appears twice; the file is corrupt.`));
        readEntry(zip, entry).then(
          (data) => {
            if (crc32(data) >>> 0 !== entry.crc32 >>> 0) {
              reject(formatError(`${file}: record ${entry.fileName} fails its CRC check; the file is corrupt. Copy or save it again.`));
              return;
            }
            records.set(entry.fileName, data);
            zip.readEntry();
          },
          (error: unknown) => reject(notAZip(file, error)),
        );
      });
      zip.readEntry();
    });
  } finally {
    zip.close();
  }
  const pickle = [...records.keys()].filter((name) => /^([^/]+\/)?data\.pkl$/.test(name)).sort((a, b) => a.length - b.length)[0];
  if (pickle === undefined) {
    throw formatError(`${file} is a zip file but has no data.pkl record, so it is not a PyTorch file (torch.save writes <name>/data.pkl).`);
  }
  const prefix = pickle.slice(0, -'data.pkl'.length);
  if (records.has(`${prefix}constants.pkl`) || [...records.keys()].some((name) => name.startsWith(`${prefix}code/`))) {
    throw formatError(
      `${file} is a TorchScript archive (torch.jit.save or LibTorch's torch::save), not a state_dict. ` +
        'In Python, save the weights with torch.save(model.state_dict(), path) and load that file instead.',
    );
  }
  return { prefix, records };
}
