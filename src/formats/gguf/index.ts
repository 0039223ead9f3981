/** GGUF reading and writing: the public surface of src/formats/gguf. */
export * from './constants.ts';
export { dequantize, DEQUANTIZERS, isDequantizable } from './dequantize.ts';
export type { DequantizableType, Dequantizer } from './dequantize.ts';
export { GgufError } from './gguf-error.ts';
export type { GgufHeader, GgufTensorInfo } from './header.ts';
export { alignOffset, shapeFromDims, dimsFromShape, tensorByteLength } from './layout.ts';
export { GgufMetadata } from './metadata.ts';
export type { GgufArray, GgufBigIntType, GgufNumberArray, GgufNumberType, GgufValue } from './metadata.ts';
export { quantize, QUANTIZERS } from './quantize.ts';
export type { QuantizableType, Quantizer } from './quantize.ts';
export { GgufFile } from './reader.ts';
export { GgufWriter } from './writer.ts';
export type { GgufWritableType, GgufWriterOptions } from './writer.ts';
