/**
 * A restricted unpickler for PyTorch files, allow-list style like torch/_weights_only_unpickler.py.
 * It builds plain data (dicts, lists, tuples, numbers, strings, tensors) and nothing else: any
 * GLOBAL outside the allow-list is refused by name before anything could run, and since this is
 * JavaScript, no Python code exists to run anyway. Everything is bounded by the input: it is one
 * loop over the bytes, every opcode consumes at least one byte, and no size read from the input
 * allocates before it has been checked against the bytes that remain.
 */
import { Lenet5Error } from '../errors.js';

export class PyTuple {
  constructor(readonly items: PyValue[]) {}
}

/** A Python dict or OrderedDict. Keys are strings or integers in state dicts. */
export class PyDict {
  readonly map = new Map<PyKey, PyValue>();
}

/** A storage referenced by a tensor: raw little-endian bytes from one zip record. */
export interface PyStorage {
  kind: 'storage';
  dtype: DType;
  key: string;
  numel: number;
  bytes: Uint8Array;
}

export interface PyTensor {
  kind: 'tensor';
  storage: PyStorage;
  offset: number;
  shape: number[];
  stride: number[];
}

export type DType = 'float32' | 'float64' | 'float16' | 'bfloat16' | 'int64' | 'int32' | 'int16' | 'int8' | 'uint8' | 'bool';
export type PyKey = string | number | bigint | boolean | null;
export type PyValue = PyKey | Uint8Array | PyValue[] | PyTuple | PyDict | PyTensor | PyStorage | PyGlobal | PyStorageType;

/** An allowed callable, as it sits on the stack between GLOBAL and REDUCE. */
interface PyGlobal {
  kind: 'global';
  name: string;
  call(args: PyValue[]): PyValue;
}

interface PyStorageType {
  kind: 'storageType';
  dtype: DType;
}

export const DTYPE_BYTES: Record<DType, number> = {
  float32: 4, float64: 8, float16: 2, bfloat16: 2, int64: 8, int32: 4, int16: 2, int8: 1, uint8: 1, bool: 1,
};

const STORAGE_TYPES: Record<string, DType> = {
  FloatStorage: 'float32', DoubleStorage: 'float64', HalfStorage: 'float16', BFloat16Storage: 'bfloat16',
  LongStorage: 'int64', IntStorage: 'int32', ShortStorage: 'int16', CharStorage: 'int8', ByteStorage: 'uint8',
  BoolStorage: 'bool',
};

/** Looks up a storage record (data/<key>) in the archive; the unpickler checks its length. */
export type StorageLoader = (key: string, dtype: DType, numel: number) => Uint8Array;

export function formatError(message: string): Lenet5Error {
  return new Lenet5Error('ERR_LENET5_PTH_FORMAT', message);
}

function isTuple(value: PyValue): value is PyTuple {
  return value instanceof PyTuple;
}

function asIntArray(value: PyValue, what: string): number[] {
  if (!isTuple(value) && !Array.isArray(value)) throw formatError(`Corrupt tensor record: ${what} is not a tuple.`);
  const items = isTuple(value) ? value.items : value;
  return items.map((item) => {
    if (typeof item !== 'number' || !Number.isSafeInteger(item) || item < 0) throw formatError(`Corrupt tensor record: ${what} holds ${String(item)}.`);
    return item;
  });
}

/** _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata]) */
function rebuildTensor(args: PyValue[]): PyTensor {
  const [storage, offset] = args;
  if (storage === null || typeof storage !== 'object' || !('kind' in storage) || storage.kind !== 'storage') {
    throw formatError('Corrupt tensor record: its first argument is not a storage.');
  }
  if (typeof offset !== 'number' || !Number.isSafeInteger(offset) || offset < 0) throw formatError('Corrupt tensor record: bad storage offset.');
  const shape = asIntArray(args[2] ?? null, 'size');
  const stride = asIntArray(args[3] ?? null, 'stride');
  if (shape.length !== stride.length) throw formatError(`Corrupt tensor record: ${shape.length} sizes but ${stride.length} strides.`);
  let numel = 1;
  let lastIndex = offset;
  for (let d = 0; d < shape.length; d++) {
    numel *= shape[d];
    lastIndex += (shape[d] - 1) * stride[d];
  }
  if (numel > 0 && lastIndex >= storage.numel) {
    throw formatError(`Corrupt tensor record: a ${shape.join('x')} view at offset ${offset} reaches element ${lastIndex}, but its storage holds ${storage.numel}.`);
  }
  // Views that repeat elements (stride 0) would let a tiny file describe a huge tensor.
  if (numel > storage.numel) {
    throw formatError(`Unsupported tensor: a ${shape.join('x')} view has more elements (${numel}) than its storage (${storage.numel}).`);
  }
  return { kind: 'tensor', storage, offset, shape, stride };
}

function makeAllowedGlobals(): Map<string, PyGlobal | PyStorageType> {
  const allowed = new Map<string, PyGlobal | PyStorageType>();
  const callable = (name: string, call: (args: PyValue[]) => PyValue) => allowed.set(name, { kind: 'global', name, call });
  callable('collections.OrderedDict', (args) => {
    if (args.length !== 0) throw formatError('OrderedDict with constructor arguments is not supported in a state dict.');
    return new PyDict();
  });
  callable('torch._utils._rebuild_tensor_v2', rebuildTensor);
  callable('torch._utils._rebuild_tensor', rebuildTensor);
  callable('torch._utils._rebuild_parameter', (args) => {
    const tensor = args[0];
    if (tensor === null || typeof tensor !== 'object' || !('kind' in tensor) || tensor.kind !== 'tensor') {
      throw formatError('Corrupt parameter record: it does not wrap a tensor.');
    }
    return tensor;
  });
  for (const [name, dtype] of Object.entries(STORAGE_TYPES)) allowed.set(`torch.${name}`, { kind: 'storageType', dtype });
  return allowed;
}

const ALLOWED_GLOBALS = makeAllowedGlobals();

function refuse(name: string): Lenet5Error {
  return new Lenet5Error('ERR_LENET5_PTH_UNSAFE',
    `Refused to load: the file's pickle asks for ${name}, which is not a tensor or container type. ` +
    'A weights file needs only tensors, dicts, lists and numbers; a pickle that names other functions or classes ' +
    'could run code if loaded with plain pickle. Nothing was executed. If you trust this file, load it in Python and ' +
    're-save just the state_dict: torch.save(model.state_dict(), path).');
}

const MARK = Symbol('mark');
type StackItem = PyValue | typeof MARK;

/** Unpickles `data`. Python's decimal text opcodes (INT, LONG, FLOAT) are accepted too. */
export function unpickle(data: Uint8Array, loadStorage: StorageLoader): PyValue {
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const decoder = new TextDecoder('utf-8', { fatal: true });
  const latin1 = new TextDecoder('latin1');
  const stack: StackItem[] = [];
  const memo = new Map<number, PyValue>();
  const storages = new Map<string, PyStorage>();
  let pos = 0;

  const need = (n: number): void => {
    if (n < 0 || pos + n > data.length) throw formatError(`Truncated pickle: needs ${n} more byte(s) at offset ${pos} of ${data.length}.`);
  };
  const u8 = (): number => { need(1); return data[pos++]; };
  const u16 = (): number => { need(2); const v = view.getUint16(pos, true); pos += 2; return v; };
  const i32 = (): number => { need(4); const v = view.getInt32(pos, true); pos += 4; return v; };
  const u32 = (): number => { need(4); const v = view.getUint32(pos, true); pos += 4; return v; };
  const u64 = (): number => {
    need(8);
    const v = view.getBigUint64(pos, true);
    pos += 8;
    if (v > BigInt(data.length)) throw formatError(`Corrupt pickle: a length of ${v} bytes exceeds the ${data.length}-byte pickle.`);
    return Number(v);
  };
  const bytes = (n: number): Uint8Array => { need(n); const out = data.subarray(pos, pos + n); pos += n; return out; };
  const line = (): string => {
    const end = data.indexOf(0x0a, pos);
    if (end < 0) throw formatError('Truncated pickle: a text field has no end of line.');
    const text = latin1.decode(data.subarray(pos, end));
    pos = end + 1;
    return text;
  };
  const utf8 = (raw: Uint8Array): string => {
    try {
      return decoder.decode(raw);
    } catch {
      throw formatError('Corrupt pickle: a string is not valid UTF-8.');
    }
  };
  const pop = (): PyValue => {
    if (stack.length === 0) throw formatError('Corrupt pickle: the stack is empty where a value was expected.');
    const item = stack.pop() as StackItem;
    if (item === MARK) throw formatError('Corrupt pickle: found a MARK where a value was expected.');
    return item;
  };
  const top = (): PyValue => {
    const item = stack[stack.length - 1];
    if (item === undefined || item === MARK) throw formatError('Corrupt pickle: the stack is empty where a value was expected.');
    return item;
  };
  const popMark = (): PyValue[] => {
    const index = stack.lastIndexOf(MARK);
    if (index < 0) throw formatError('Corrupt pickle: no MARK on the stack.');
    const items = stack.splice(index) as StackItem[];
    items.shift();
    return items as PyValue[];
  };
  const long = (raw: Uint8Array): number | bigint => {
    if (raw.length === 0) return 0;
    let value = 0n;
    for (let i = raw.length - 1; i >= 0; i--) value = (value << 8n) | BigInt(raw[i]);
    if (raw[raw.length - 1] & 0x80) value -= 1n << BigInt(8 * raw.length);
    return value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : value;
  };
  const setItems = (target: PyValue, items: PyValue[]): void => {
    if (!(target instanceof PyDict)) throw formatError('Corrupt pickle: SETITEM(S) on something that is not a dict.');
    if (items.length % 2 !== 0) throw formatError('Corrupt pickle: SETITEMS with an odd number of items.');
    for (let i = 0; i < items.length; i += 2) target.map.set(asKey(items[i]), items[i + 1]);
  };
  const append = (target: PyValue, items: PyValue[]): void => {
    if (!Array.isArray(target)) throw formatError('Corrupt pickle: APPEND(S) on something that is not a list.');
    for (const item of items) target.push(item);
  };
  const global = (module: string, name: string): PyValue => {
    const qualified = `${module}.${name}`;
    const found = ALLOWED_GLOBALS.get(qualified);
    if (!found) throw refuse(qualified);
    return found;
  };
  const memoPut = (index: number): void => {
    memo.set(index, top());
  };
  const memoGet = (index: number): void => {
    if (!memo.has(index)) throw formatError(`Corrupt pickle: memo entry ${index} is read before it is written.`);
    stack.push(memo.get(index) as PyValue);
  };
  const persistentLoad = (pid: PyValue): PyStorage => {
    if (!isTuple(pid) || pid.items[0] !== 'storage' || pid.items.length < 5) {
      throw formatError('Unsupported persistent id: expected a ("storage", type, key, location, numel) record.');
    }
    const [, type, key, , numel] = pid.items;
    if (type === null || typeof type !== 'object' || !('kind' in type) || type.kind !== 'storageType') {
      throw formatError('Corrupt storage record: its type is not a torch storage class.');
    }
    if (typeof key !== 'string' || typeof numel !== 'number' || !Number.isSafeInteger(numel) || numel < 0) {
      throw formatError('Corrupt storage record: bad key or element count.');
    }
    let storage = storages.get(key);
    if (!storage) {
      storage = { kind: 'storage', dtype: type.dtype, key, numel, bytes: loadStorage(key, type.dtype, numel) };
      storages.set(key, storage);
    } else if (storage.dtype !== type.dtype || storage.numel !== numel) {
      throw formatError(`Corrupt storage record: storage ${key} is described twice, differently.`);
    }
    return storage;
  };

  for (;;) {
    const op = u8();
    switch (op) {
      case 0x80: u8(); break; // PROTO
      case 0x95: u64(); break; // FRAME: framing is only a hint for buffered readers
      case 0x2e: { // STOP
        const result = pop();
        if (stack.length !== 0) throw formatError('Corrupt pickle: values left on the stack at STOP.');
        return result;
      }
      case 0x28: stack.push(MARK); break; // MARK
      case 0x30: pop(); break; // POP
      case 0x31: popMark(); break; // POP_MARK
      case 0x32: stack.push(top()); break; // DUP
      case 0x4e: stack.push(null); break; // NONE
      case 0x88: stack.push(true); break; // NEWTRUE
      case 0x89: stack.push(false); break; // NEWFALSE
      case 0x4a: stack.push(i32()); break; // BININT
      case 0x4b: stack.push(u8()); break; // BININT1
      case 0x4d: stack.push(u16()); break; // BININT2
      case 0x8a: stack.push(long(bytes(u8()))); break; // LONG1
      case 0x8b: { // LONG4
        const n = i32();
        if (n < 0) throw formatError('Corrupt pickle: negative LONG4 length.');
        stack.push(long(bytes(n)));
        break;
      }
      case 0x49: { // INT (text; "01"/"00" are booleans)
        const text = line();
        if (text === '01' || text === '00') stack.push(text === '01');
        else stack.push(parseDecimal(text));
        break;
      }
      case 0x4c: stack.push(parseDecimal(line().replace(/L$/, ''))); break; // LONG (text)
      case 0x46: { // FLOAT (text)
        const value = Number(line());
        if (Number.isNaN(value)) throw formatError('Corrupt pickle: bad FLOAT text.');
        stack.push(value);
        break;
      }
      case 0x47: { need(8); stack.push(view.getFloat64(pos, false)); pos += 8; break; } // BINFLOAT (big-endian)
      case 0x58: stack.push(utf8(bytes(u32()))); break; // BINUNICODE
      case 0x8c: stack.push(utf8(bytes(u8()))); break; // SHORT_BINUNICODE
      case 0x8d: stack.push(utf8(bytes(u64()))); break; // BINUNICODE8
      case 0x56: stack.push(line()); break; // UNICODE (raw-unicode-escape; ASCII in practice)
      case 0x55: stack.push(latin1.decode(bytes(u8()))); break; // SHORT_BINSTRING
      case 0x54: { // BINSTRING
        const n = i32();
        if (n < 0) throw formatError('Corrupt pickle: negative BINSTRING length.');
        stack.push(latin1.decode(bytes(n)));
        break;
      }
      case 0x53: stack.push(line().replace(/^(['"])(.*)\1$/, '$2')); break; // STRING (text, quoted)
      case 0x42: stack.push(bytes(u32()).slice()); break; // BINBYTES
      case 0x43: stack.push(bytes(u8()).slice()); break; // SHORT_BINBYTES
      case 0x8e: stack.push(bytes(u64()).slice()); break; // BINBYTES8
      case 0x96: stack.push(bytes(u64()).slice()); break; // BYTEARRAY8
      case 0x5d: stack.push([]); break; // EMPTY_LIST
      case 0x6c: stack.push(popMark()); break; // LIST
      case 0x61: { const item = pop(); append(top(), [item]); break; } // APPEND
      case 0x65: { const items = popMark(); append(top(), items); break; } // APPENDS
      case 0x29: stack.push(new PyTuple([])); break; // EMPTY_TUPLE
      case 0x74: stack.push(new PyTuple(popMark())); break; // TUPLE
      case 0x85: stack.push(new PyTuple([pop()])); break; // TUPLE1
      case 0x86: { const b = pop(); const a = pop(); stack.push(new PyTuple([a, b])); break; } // TUPLE2
      case 0x87: { const c = pop(); const b = pop(); const a = pop(); stack.push(new PyTuple([a, b, c])); break; } // TUPLE3
      case 0x7d: stack.push(new PyDict()); break; // EMPTY_DICT
      case 0x64: { const dict = new PyDict(); setItems(dict, popMark()); stack.push(dict); break; } // DICT
      case 0x73: { const value = pop(); const key = pop(); setItems(top(), [key, value]); break; } // SETITEM
      case 0x75: { const items = popMark(); setItems(top(), items); break; } // SETITEMS
      case 0x8f: stack.push([]); break; // EMPTY_SET (as a list: sets hold no tensors in state dicts)
      case 0x90: { const items = popMark(); append(top(), items); break; } // ADDITEMS
      case 0x91: stack.push(popMark()); break; // FROZENSET
      case 0x70: memoPut(parseDecimal(line(), true) as number); break; // PUT
      case 0x71: memoPut(u8()); break; // BINPUT
      case 0x72: memoPut(u32()); break; // LONG_BINPUT
      case 0x94: memoPut(memo.size); break; // MEMOIZE
      case 0x67: memoGet(parseDecimal(line(), true) as number); break; // GET
      case 0x68: memoGet(u8()); break; // BINGET
      case 0x6a: memoGet(u32()); break; // LONG_BINGET
      case 0x63: { const module = line(); const name = line(); stack.push(global(module, name)); break; } // GLOBAL
      case 0x93: { // STACK_GLOBAL
        const name = pop();
        const module = pop();
        if (typeof module !== 'string' || typeof name !== 'string') throw formatError('Corrupt pickle: STACK_GLOBAL needs two strings.');
        stack.push(global(module, name));
        break;
      }
      case 0x52: { // REDUCE
        const args = pop();
        const callable = pop();
        if (callable === null || typeof callable !== 'object' || !('kind' in callable) || callable.kind !== 'global') {
          throw formatError('Corrupt pickle: REDUCE on something that is not an allowed function.');
        }
        if (!isTuple(args)) throw formatError(`Corrupt pickle: the arguments to ${callable.name} are not a tuple.`);
        stack.push(callable.call(args.items));
        break;
      }
      case 0x62: { // BUILD: only on a dict (an OrderedDict's _metadata attribute), and dropped: loading never needs it
        pop();
        if (!(top() instanceof PyDict)) throw formatError('Unsupported pickle: BUILD on an object other than a dict.');
        break;
      }
      case 0x51: stack.push(persistentLoad(pop())); break; // BINPERSID
      case 0x50: throw formatError('Unsupported pickle: text persistent ids (PERSID) do not occur in PyTorch files.');
      case 0x81: case 0x92: { // NEWOBJ, NEWOBJ_EX: class instantiation
        throw new Lenet5Error('ERR_LENET5_PTH_UNSAFE', 'Refused to load: the pickle instantiates a class (NEWOBJ). A weights file needs only tensors and containers. Nothing was executed.');
      }
      case 0x69: { // INST: module and class name follow as text
        const module = line();
        const name = line();
        throw refuse(`${module}.${name}`);
      }
      case 0x6f: // OBJ
        throw new Lenet5Error('ERR_LENET5_PTH_UNSAFE', 'Refused to load: the pickle instantiates a class (OBJ). A weights file needs only tensors and containers. Nothing was executed.');
      case 0x82: case 0x83: case 0x84: // EXT1, EXT2, EXT4
        throw new Lenet5Error('ERR_LENET5_PTH_UNSAFE', 'Refused to load: the pickle uses the extension registry (EXT), which names code by number. Nothing was executed.');
      default:
        throw formatError(`Corrupt pickle: unknown or unsupported opcode 0x${op.toString(16).padStart(2, '0')} at offset ${pos - 1}.`);
    }
  }
}

function parseDecimal(text: string, index = false): number | bigint {
  if (!/^-?\d+$/.test(text.trim())) throw formatError(`Corrupt pickle: "${text.slice(0, 20)}" is not an integer.`);
  const value = BigInt(text.trim());
  if (index && (value < 0n || value > 0xffffffffn)) throw formatError('Corrupt pickle: memo index out of range.');
  return value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : value;
}

function asKey(value: PyValue): PyKey {
  if (value === null || ['string', 'number', 'bigint', 'boolean'].includes(typeof value)) return value as PyKey;
  if (isTuple(value)) throw formatError('Unsupported pickle: tuple dictionary keys do not occur in state dicts.');
  throw formatError('Corrupt pickle: a dictionary key is not a string or number.');
}
