/**
 * The allow-list: the only Python names a pickle may use (by GLOBAL), like
 * torch/_weights_only_unpickler.py's. Each is a container, a storage class or a tensor rebuild,
 * implemented here on plain values; any other name is refused before anything could run.
 */
import { Lenet5Error } from '../errors.js';
import { PyDict, formatError, isTuple, type DType, type PyGlobal, type PyStorageType, type PyTensor, type PyValue } from './values.js';

const STORAGE_TYPES: Record<string, DType> = {
  FloatStorage: 'float32',
  DoubleStorage: 'float64',
  HalfStorage: 'float16',
  BFloat16Storage: 'bfloat16',
  LongStorage: 'int64',
  IntStorage: 'int32',
  ShortStorage: 'int16',
  CharStorage: 'int8',
  ByteStorage: 'uint8',
  BoolStorage: 'bool',
};

/** torch.<Name>Storage types of dtypes this reader does not convert, by PyTorch's dtype name. */
const UNSUPPORTED_STORAGE_DTYPES: Record<string, string> = {
  ComplexHalfStorage: 'complex32',
  ComplexFloatStorage: 'complex64',
  ComplexDoubleStorage: 'complex128',
};

/** dtypes PyTorch 2.x pickles by name, as _rebuild_tensor_v3's last argument. */
const V3_DTYPE = /^(u?int(1|2|3|4|5|6|7|16|32|64)|float8_[a-z0-9]+|float4_[a-z0-9]+|complex32|bits[a-z0-9]+)$/;

/** Dimensions a tensor may have (PyTorch's own kernels stop at 25); also bounds the work per element when copying a view. */
const MAX_DIMENSIONS = 64;

function unsupportedDtype(dtype: string): Lenet5Error {
  return formatError(
    `Unsupported dtype ${dtype}: the file holds a tensor of that type. This reader takes float32, float64, float16, ` +
      'bfloat16, int64, int32, int16, int8, uint8 and bool tensors. In Python, convert the tensor (t.float()) and save again.',
  );
}

function asIntArray(value: PyValue, what: string): number[] {
  if (!isTuple(value) && !Array.isArray(value)) throw formatError(`Corrupt tensor record: ${what} is not a tuple.`);
  const items = isTuple(value) ? value.items : value;
  return items.map((item) => {
    if (typeof item !== 'number' || !Number.isSafeInteger(item) || item < 0)
      throw formatError(`Corrupt tensor record: ${what} holds ${String(item)}.`);
    return item;
  });
}

/** _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata]) */
function rebuildTensor(args: PyValue[]): PyTensor {
  const [storage, offset] = args;
  if (storage === null || typeof storage !== 'object' || !('kind' in storage) || storage.kind !== 'storage') {
    throw formatError('Corrupt tensor record: its first argument is not a storage.');
  }
  if (typeof offset !== 'number' || !Number.isSafeInteger(offset) || offset < 0)
    throw formatError('Corrupt tensor record: bad storage offset.');
  const shape = asIntArray(args[2] ?? null, 'size');
  const stride = asIntArray(args[3] ?? null, 'stride');
  if (shape.length !== stride.length) throw formatError(`Corrupt tensor record: ${shape.length} sizes but ${stride.length} strides.`);
  if (shape.length > MAX_DIMENSIONS)
    throw formatError(`Unsupported tensor: ${shape.length} dimensions; this reader takes up to ${MAX_DIMENSIONS}.`);
  let numel = 1;
  let lastIndex = offset;
  for (let d = 0; d < shape.length; d++) {
    numel *= shape[d];
    lastIndex += (shape[d] - 1) * stride[d];
  }
  if (numel > 0 && lastIndex >= storage.numel) {
    throw formatError(
      `Corrupt tensor record: a ${shape.join('x')} view at offset ${offset} reaches element ${lastIndex}, but its storage holds ${storage.numel}.`,
    );
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
  // PyTorch 2.x saves dtypes without a typed storage class (uint16, float8_*, complex32, ...) as
  // _rebuild_tensor_v3(untyped storage, ..., dtype): read far enough to name the dtype, then refuse.
  allowed.set('torch.storage.UntypedStorage', { kind: 'storageType', dtype: 'uint8' });
  callable('torch._utils._rebuild_tensor_v3', (args) => {
    const dtype = args[6];
    throw unsupportedDtype(
      dtype !== null && typeof dtype === 'object' && 'kind' in dtype && dtype.kind === 'global'
        ? dtype.name.replace(/^torch\./, '')
        : 'unknown',
    );
  });
  return allowed;
}

const ALLOWED_GLOBALS = makeAllowedGlobals();

/**
 * What GLOBAL module.name pushes: an allowed name's value. Other torch storage types and dtypes
 * (PyTorch's weights-only loader allows them) are tensors of dtypes this reader does not convert:
 * ERR_LENET5_PTH_FORMAT naming the dtype. Anything else is refused as unsafe.
 */
export function lookupGlobal(module: string, name: string): PyGlobal | PyStorageType {
  const qualified = `${module}.${name}`;
  const found = ALLOWED_GLOBALS.get(qualified);
  if (found) return found;
  if (module === 'torch' && /^[A-Za-z0-9_]+Storage$/.test(name)) {
    throw unsupportedDtype(UNSUPPORTED_STORAGE_DTYPES[name] ?? name.replace(/Storage$/, '').toLowerCase());
  }
  if (module === 'torch' && V3_DTYPE.test(name)) {
    return {
      kind: 'global',
      name: qualified,
      call: () => {
        throw unsupportedDtype(name);
      },
    };
  }
  throw refuse(qualified);
}

export function refuse(name: string): Lenet5Error {
  return new Lenet5Error(
    'ERR_LENET5_PTH_UNSAFE',
    `Refused to load: the file's pickle asks for ${name}, which is not a tensor or container type. ` +
      'A weights file needs only tensors, dicts, lists and numbers; a pickle that names other functions or classes ' +
      'could run code if loaded with plain pickle. Nothing was executed. If you trust this file, load it in Python and ' +
      're-save just the state_dict: torch.save(model.state_dict(), path).',
  );
}
