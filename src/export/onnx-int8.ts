/**
 * Export of an int8 model as QDQ ONNX (opset 13): the float graph of onnx.ts with QuantizeLinear /
 * DequantizeLinear pairs at every quantized activation and DequantizeLinear on the int8 weights
 * (per output channel, axis 0) and int32 biases. This is the "static S8S8 QDQ" form ONNX Runtime
 * recommends for CNNs: it fuses each DQ -> Conv/Gemm -> Q into an integer kernel. The values are
 * those of src/quantize/int8.ts, so the file computes what QuantizedLeNet5.predict computes.
 */
import {
  ACTIVATIONS,
  QUANTIZED_LAYERS,
  outputScales,
  type ActivationName,
  type LayerName,
  type QuantizedNetwork,
} from '../quantize/int8.js';
import { FLOAT, IR_VERSION, ModelProto, ONNX_OPSET, int, ints, node, valueInfo } from './onnx.js';

const INT8 = 3;
const INT32 = 6;

interface Initializer {
  name: string;
  dims: number[];
  dataType: number;
  rawData: Uint8Array;
}

function initializer(name: string, dims: number[], dataType: number, values: Int8Array | Int32Array | Float32Array): Initializer {
  return { name, dims, dataType, rawData: new Uint8Array(values.buffer, values.byteOffset, values.byteLength) }; // little-endian
}

/** The bytes of a QDQ ONNX model computing an int8 LeNet-5's logits from normalised input [N, 1, 28, 28]. */
export function lenet5ToQdqOnnx(network: QuantizedNetwork): Uint8Array {
  const initializers: Initializer[] = [];
  const nodes: ReturnType<typeof node>[] = [];
  for (const point of ACTIVATIONS) {
    initializers.push(initializer(`${point}_scale`, [], FLOAT, Float32Array.of(network.activationScales[point])));
    initializers.push(initializer(`${point}_zero_point`, [], INT8, Int8Array.of(0)));
  }
  /** Q then DQ of `input` with an activation's scale: the values the int8 path holds there. */
  const quantizeDequantize = (input: string, point: ActivationName) => {
    nodes.push(node('QuantizeLinear', [input, `${point}_scale`, `${point}_zero_point`], `${input}_q`));
    nodes.push(node('DequantizeLinear', [`${input}_q`, `${point}_scale`, `${point}_zero_point`], `${input}_dq`));
    return `${input}_dq`;
  };
  /** The layer's int8 weight and int32 bias as initializers, each behind a per-channel DequantizeLinear. */
  const dequantizedParameters = (name: LayerName) => {
    const layer = network.layers[name];
    const channels = layer.shape[0];
    initializers.push(
      initializer(`${name}.weight`, layer.shape, INT8, layer.weight),
      initializer(`${name}.weight_scale`, [channels], FLOAT, layer.weightScales),
      initializer(`${name}.weight_zero_point`, [channels], INT8, new Int8Array(channels)),
      initializer(`${name}.bias`, [channels], INT32, layer.bias),
      initializer(`${name}.bias_scale`, [channels], FLOAT, outputScales(network, name)),
      initializer(`${name}.bias_zero_point`, [channels], INT32, new Int32Array(channels)),
    );
    for (const part of ['weight', 'bias']) {
      const inputs = [`${name}.${part}`, `${name}.${part}_scale`, `${name}.${part}_zero_point`];
      nodes.push(node('DequantizeLinear', inputs, `${name}.${part}_dq`, [int('axis', 0)]));
    }
    return [`${name}.weight_dq`, `${name}.bias_dq`];
  };
  const pool = (input: string, output: string) =>
    nodes.push(node('MaxPool', [input], output, [ints('kernel_shape', [2, 2]), ints('strides', [2, 2])]));

  let x = quantizeDequantize('input', 'input');
  QUANTIZED_LAYERS.forEach((name, i) => {
    const parameters = dequantizedParameters(name);
    const output = name === 'fc3' ? 'logits' : `${name}_out`;
    if (name.startsWith('conv')) {
      const pads = name === 'conv1' ? [2, 2, 2, 2] : [0, 0, 0, 0];
      nodes.push(node('Conv', [x, ...parameters], output, [ints('kernel_shape', [5, 5]), ints('strides', [1, 1]), ints('pads', pads)]));
    } else {
      nodes.push(node('Gemm', [x, ...parameters], output, [int('transB', 1)]));
    }
    if (name === 'fc3') return;
    const point = ACTIVATIONS[i + 1];
    nodes.push(node('Relu', [output], point));
    x = quantizeDequantize(point, point);
    if (name === 'conv1') {
      pool(x, 'pool1');
      x = quantizeDequantize('pool1', point); // lossless (the same scale), so Runtime keeps the pool in int8
    } else if (name === 'conv2') {
      pool(x, 'pool2');
      nodes.push(node('Flatten', ['pool2'], 'flat', [int('axis', 1)]));
      x = quantizeDequantize('flat', point);
    }
  });
  const message = ModelProto.create({
    irVersion: IR_VERSION,
    producerName: 'lenet5-libtorch',
    opsetImport: [{ domain: '', version: ONNX_OPSET }],
    graph: {
      name: 'LeNet5Int8',
      node: nodes,
      initializer: initializers,
      input: [valueInfo('input', ['N', 1, 28, 28])],
      output: [valueInfo('logits', ['N', network.numClasses])],
    },
  });
  return ModelProto.encode(message).finish();
}
