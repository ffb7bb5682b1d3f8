/**
 * Export to ONNX (opset 13, dynamic batch dimension): Conv, Relu, MaxPool, Flatten and Gemm, the
 * graph of LeNet-5, with the weights as initializers. The protobuf encoding is protobufjs's, from
 * the subset of onnx.proto (github.com/onnx/onnx, onnx/onnx.proto) that this graph uses.
 */
import protobuf from 'protobufjs';

export const ONNX_OPSET = 13;
export const IR_VERSION = 7;
export const FLOAT = 1;
const ATTRIBUTE_INT = 2;
const ATTRIBUTE_INTS = 7;

const ONNX_SUBSET = `
syntax = "proto2";
package onnx;
message AttributeProto { optional string name = 1; optional int64 i = 3; repeated int64 ints = 8; optional int32 type = 20; }
message ValueInfoProto { optional string name = 1; optional TypeProto type = 2; }
message NodeProto { repeated string input = 1; repeated string output = 2; optional string name = 3; optional string op_type = 4; repeated AttributeProto attribute = 5; }
message ModelProto { optional int64 ir_version = 1; optional string producer_name = 2; optional string producer_version = 3;
  optional GraphProto graph = 7; repeated OperatorSetIdProto opset_import = 8; }
message GraphProto { repeated NodeProto node = 1; optional string name = 2; repeated TensorProto initializer = 5;
  repeated ValueInfoProto input = 11; repeated ValueInfoProto output = 12; }
message TensorProto { repeated int64 dims = 1; optional int32 data_type = 2; optional string name = 8; optional bytes raw_data = 9; }
message TensorShapeProto { message Dimension { oneof value { int64 dim_value = 1; string dim_param = 2; } } repeated Dimension dim = 1; }
message TypeProto { message Tensor { optional int32 elem_type = 1; optional TensorShapeProto shape = 2; } oneof value { Tensor tensor_type = 1; } }
message OperatorSetIdProto { optional string domain = 1; optional int64 version = 2; }
`;

export const ModelProto = protobuf.parse(ONNX_SUBSET).root.lookupType('onnx.ModelProto');

type Attribute = { name: string; i?: number; ints?: number[]; type: number };
export const ints = (name: string, values: number[]): Attribute => ({ name, ints: values, type: ATTRIBUTE_INTS });
export const int = (name: string, value: number): Attribute => ({ name, i: value, type: ATTRIBUTE_INT });

export function node(opType: string, inputs: string[], output: string, attribute: Attribute[] = []) {
  return { opType, input: inputs, output: [output], name: output, attribute };
}

export function valueInfo(name: string, dims: (number | string)[]) {
  return {
    name,
    type: { tensorType: { elemType: FLOAT, shape: { dim: dims.map((d) => (typeof d === 'string' ? { dimParam: d } : { dimValue: d })) } } },
  };
}

export interface OnnxParameter {
  name: string;
  shape: number[];
  values: Float32Array;
}

/** The bytes of an ONNX model computing LeNet-5's logits from normalised input [N, 1, 28, 28]. */
export function lenet5ToOnnx(parameters: OnnxParameter[], numClasses: number, producerVersion: string): Uint8Array {
  const conv = (name: string, input: string, pads: number[]) =>
    node('Conv', [input, `${name}.weight`, `${name}.bias`], `${name}_out`, [
      ints('kernel_shape', [5, 5]),
      ints('strides', [1, 1]),
      ints('pads', pads),
    ]);
  const pool = (input: string, output: string) => node('MaxPool', [input], output, [ints('kernel_shape', [2, 2]), ints('strides', [2, 2])]);
  const gemm = (name: string, input: string) => node('Gemm', [input, `${name}.weight`, `${name}.bias`], `${name}_out`, [int('transB', 1)]);
  const nodes = [
    conv('conv1', 'input', [2, 2, 2, 2]),
    node('Relu', ['conv1_out'], 'relu1'),
    pool('relu1', 'pool1'),
    conv('conv2', 'pool1', [0, 0, 0, 0]),
    node('Relu', ['conv2_out'], 'relu2'),
    pool('relu2', 'pool2'),
    node('Flatten', ['pool2'], 'flat', [int('axis', 1)]),
    gemm('fc1', 'flat'),
    node('Relu', ['fc1_out'], 'relu3'),
    gemm('fc2', 'relu3'),
    node('Relu', ['fc2_out'], 'relu4'),
    { ...gemm('fc3', 'relu4'), output: ['logits'], name: 'logits' },
  ];
  const message = ModelProto.create({
    irVersion: IR_VERSION,
    producerName: 'lenet5-libtorch',
    producerVersion,
    opsetImport: [{ domain: '', version: ONNX_OPSET }],
    graph: {
      name: 'LeNet5',
      node: nodes,
      initializer: parameters.map((p) => ({
        name: p.name,
        dims: p.shape,
        dataType: FLOAT,
        rawData: new Uint8Array(p.values.buffer, p.values.byteOffset, p.values.byteLength), // little-endian, as ONNX requires
      })),
      input: [valueInfo('input', ['N', 1, 28, 28])],
      output: [valueInfo('logits', ['N', numClasses])],
    },
  });
  return ModelProto.encode(message).finish();
}
