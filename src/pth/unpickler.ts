/**
 * A restricted unpickler for PyTorch files, allow-list style like torch/_weights_only_unpickler.py.
 * It builds plain data (values.ts: dicts, lists, tuples, numbers, strings, tensors) and nothing
 * else: any GLOBAL outside the allow-list (allowed-globals.ts) is refused by name before anything
 * could run, and since this is JavaScript, no Python code exists to run anyway. Everything is
 * bounded by the input: it is one loop over the bytes, every opcode consumes at least one byte, and
 * no size read from the input allocates before it has been checked against the bytes that remain.
 */
import { Lenet5Error } from '../errors.js';
import { lookupGlobal, refuse } from './allowed-globals.js';
import { PyDict, PyTuple, formatError, isTuple, type DType, type PyKey, type PyStorage, type PyValue } from './values.js';

/** Looks up a storage record (data/<key>) in the archive; the unpickler checks its length. */
export type StorageLoader = (key: string, dtype: DType, numel: number) => Uint8Array;

/**
 * The opcodes this unpickler reads: exactly those torch.load(weights_only=True) reads
 * (torch/_weights_only_unpickler.py, PyTorch 2.x), less NEWOBJ (it builds objects; refused below).
 * The state_dicts and checkpoints that torch.save writes (PyTorch 1.13 and 2.x, its default
 * protocol 2: plain, float16, nn.DataParallel, Adam/AMSGrad/SGD checkpoints) and those LibTorch's
 * pickler writes for this package use no other opcode (checked with pickletools), so none is
 * accepted beyond PyTorch's set.
 */
const Op = {
  PROTO: 0x80,
  STOP: 0x2e,
  MARK: 0x28,
  NONE: 0x4e,
  NEWTRUE: 0x88,
  NEWFALSE: 0x89,
  BININT: 0x4a,
  BININT1: 0x4b,
  BININT2: 0x4d,
  LONG1: 0x8a,
  BINFLOAT: 0x47,
  BINUNICODE: 0x58,
  SHORT_BINSTRING: 0x55,
  EMPTY_LIST: 0x5d,
  APPEND: 0x61,
  APPENDS: 0x65,
  EMPTY_TUPLE: 0x29,
  TUPLE: 0x74,
  TUPLE1: 0x85,
  TUPLE2: 0x86,
  TUPLE3: 0x87,
  EMPTY_DICT: 0x7d,
  SETITEM: 0x73,
  SETITEMS: 0x75,
  EMPTY_SET: 0x8f,
  BINPUT: 0x71,
  LONG_BINPUT: 0x72,
  BINGET: 0x68,
  LONG_BINGET: 0x6a,
  GLOBAL: 0x63,
  REDUCE: 0x52,
  BUILD: 0x62,
  BINPERSID: 0x51,
} as const;

/** Opcodes that build objects or name code other than by GLOBAL: refused as unsafe, whatever they name. */
const UnsafeOp = { NEWOBJ: 0x81, NEWOBJ_EX: 0x92, INST: 0x69, OBJ: 0x6f, EXT1: 0x82, EXT2: 0x83, EXT4: 0x84 } as const;

/** The rest of pickle's opcodes, named for the error message; PyTorch's weights-only loader refuses them too. */
const UNSUPPORTED_OPS: Record<number, string> = {
  0x95: 'FRAME, pickle protocol 4',
  0x94: 'MEMOIZE, protocol 4',
  0x93: 'STACK_GLOBAL, protocol 4',
  0x8c: 'SHORT_BINUNICODE, protocol 4',
  0x8d: 'BINUNICODE8, protocol 4',
  0x8e: 'BINBYTES8, protocol 4',
  0x96: 'BYTEARRAY8, protocol 5',
  0x97: 'NEXT_BUFFER, protocol 5',
  0x98: 'READONLY_BUFFER, protocol 5',
  0x42: 'BINBYTES, protocol 3',
  0x43: 'SHORT_BINBYTES, protocol 3',
  0x8b: 'LONG4',
  0x49: 'INT, text',
  0x4c: 'LONG, text',
  0x46: 'FLOAT, text',
  0x53: 'STRING, text',
  0x54: 'BINSTRING',
  0x56: 'UNICODE, text',
  0x70: 'PUT, text',
  0x67: 'GET, text',
  0x50: 'PERSID, text',
  0x6c: 'LIST',
  0x64: 'DICT',
  0x90: 'ADDITEMS',
  0x91: 'FROZENSET',
  0x30: 'POP',
  0x31: 'POP_MARK',
  0x32: 'DUP',
};

const MARK = Symbol('mark');
type StackItem = PyValue | typeof MARK;

/** Unpickles `data` (see Op for what it reads). */
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
  const u8 = (): number => {
    need(1);
    return data[pos++];
  };
  const u16 = (): number => {
    need(2);
    const v = view.getUint16(pos, true);
    pos += 2;
    return v;
  };
  const i32 = (): number => {
    need(4);
    const v = view.getInt32(pos, true);
    pos += 4;
    return v;
  };
  const u32 = (): number => {
    need(4);
    const v = view.getUint32(pos, true);
    pos += 4;
    return v;
  };
  const bytes = (n: number): Uint8Array => {
    need(n);
    const out = data.subarray(pos, pos + n);
    pos += n;
    return out;
  };
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
  const global = (module: string, name: string): PyValue => lookupGlobal(module, name);
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
  const instantiates = (opcode: string): Lenet5Error =>
    new Lenet5Error(
      'ERR_LENET5_PTH_UNSAFE',
      `Refused to load: the pickle instantiates a class (${opcode}). A weights file needs only tensors and containers. Nothing was executed.`,
    );

  for (;;) {
    const op = u8();
    switch (op) {
      case Op.PROTO:
        u8();
        break;
      case Op.STOP: {
        const result = pop();
        if (stack.length !== 0) throw formatError('Corrupt pickle: values left on the stack at STOP.');
        return result;
      }
      case Op.MARK:
        stack.push(MARK);
        break;
      case Op.NONE:
        stack.push(null);
        break;
      case Op.NEWTRUE:
        stack.push(true);
        break;
      case Op.NEWFALSE:
        stack.push(false);
        break;
      case Op.BININT:
        stack.push(i32());
        break;
      case Op.BININT1:
        stack.push(u8());
        break;
      case Op.BININT2:
        stack.push(u16());
        break;
      case Op.LONG1:
        stack.push(long(bytes(u8())));
        break;
      case Op.BINFLOAT: {
        need(8);
        stack.push(view.getFloat64(pos, false));
        pos += 8;
        break;
      } // big-endian
      case Op.BINUNICODE:
        stack.push(utf8(bytes(u32())));
        break;
      case Op.SHORT_BINSTRING:
        stack.push(latin1.decode(bytes(u8())));
        break;
      case Op.EMPTY_LIST:
        stack.push([]);
        break;
      case Op.APPEND: {
        const item = pop();
        append(top(), [item]);
        break;
      }
      case Op.APPENDS: {
        const items = popMark();
        append(top(), items);
        break;
      }
      case Op.EMPTY_TUPLE:
        stack.push(new PyTuple([]));
        break;
      case Op.TUPLE:
        stack.push(new PyTuple(popMark()));
        break;
      case Op.TUPLE1:
        stack.push(new PyTuple([pop()]));
        break;
      case Op.TUPLE2: {
        const b = pop();
        const a = pop();
        stack.push(new PyTuple([a, b]));
        break;
      }
      case Op.TUPLE3: {
        const c = pop();
        const b = pop();
        const a = pop();
        stack.push(new PyTuple([a, b, c]));
        break;
      }
      case Op.EMPTY_DICT:
        stack.push(new PyDict());
        break;
      case Op.SETITEM: {
        const value = pop();
        const key = pop();
        setItems(top(), [key, value]);
        break;
      }
      case Op.SETITEMS: {
        const items = popMark();
        setItems(top(), items);
        break;
      }
      case Op.EMPTY_SET:
        stack.push([]);
        break; // as a list: nothing can be added (no ADDITEMS), and no state dict holds a set
      case Op.BINPUT:
        memoPut(u8());
        break;
      case Op.LONG_BINPUT:
        memoPut(u32());
        break;
      case Op.BINGET:
        memoGet(u8());
        break;
      case Op.LONG_BINGET:
        memoGet(u32());
        break;
      case Op.GLOBAL: {
        const module = line();
        const name = line();
        stack.push(global(module, name));
        break;
      }
      case Op.REDUCE: {
        const args = pop();
        const callable = pop();
        if (callable === null || typeof callable !== 'object' || !('kind' in callable) || callable.kind !== 'global') {
          throw formatError('Corrupt pickle: REDUCE on something that is not an allowed function.');
        }
        if (!isTuple(args)) throw formatError(`Corrupt pickle: the arguments to ${callable.name} are not a tuple.`);
        stack.push(callable.call(args.items));
        break;
      }
      case Op.BUILD: {
        // only on a dict (an OrderedDict's _metadata attribute), and dropped: loading never needs it
        pop();
        if (!(top() instanceof PyDict)) throw formatError('Unsupported pickle: BUILD on an object other than a dict.');
        break;
      }
      case Op.BINPERSID:
        stack.push(persistentLoad(pop()));
        break;
      case UnsafeOp.NEWOBJ:
        throw instantiates('NEWOBJ');
      case UnsafeOp.NEWOBJ_EX:
        throw instantiates('NEWOBJ_EX');
      case UnsafeOp.OBJ:
        throw instantiates('OBJ');
      case UnsafeOp.INST: {
        // module and class name follow as text
        const module = line();
        const name = line();
        throw refuse(`${module}.${name}`);
      }
      case UnsafeOp.EXT1:
      case UnsafeOp.EXT2:
      case UnsafeOp.EXT4:
        throw new Lenet5Error(
          'ERR_LENET5_PTH_UNSAFE',
          'Refused to load: the pickle uses the extension registry (EXT), which names code by number. Nothing was executed.',
        );
      default: {
        const name = UNSUPPORTED_OPS[op];
        throw formatError(
          `Unsupported pickle: unknown or unsupported opcode 0x${op.toString(16).padStart(2, '0')}${name ? ` (${name})` : ''} at offset ${pos - 1}. ` +
            'This reader takes the opcodes torch.load(weights_only=True) takes; torch.save writes them unless given another pickle_protocol. ' +
            'In Python, re-save the weights with torch.save(model.state_dict(), path).',
        );
      }
    }
  }
}

function asKey(value: PyValue): PyKey {
  if (value === null || ['string', 'number', 'bigint', 'boolean'].includes(typeof value)) return value as PyKey;
  if (isTuple(value)) throw formatError('Unsupported pickle: tuple dictionary keys do not occur in state dicts.');
  throw formatError('Corrupt pickle: a dictionary key is not a string or number.');
}
