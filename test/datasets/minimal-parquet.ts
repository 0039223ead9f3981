/**
 * Test fixture: writes the smallest valid Parquet file (format spec, parquet-format/src/main/thrift/
 * parquet.thrift): one row group, REQUIRED columns, one uncompressed PLAIN data page per column, metadata
 * in Thrift's compact protocol. There is no JS Parquet writer installed; this covers INT32, DOUBLE and
 * UTF8 strings, which is what the reader tests need.
 */

export type ParquetColumn =
  | { name: string; type: 'int32'; values: number[] }
  | { name: string; type: 'double'; values: number[] }
  | { name: string; type: 'utf8'; values: string[] };

const PHYSICAL_TYPE = { int32: 1, double: 5, utf8: 6 } as const; // INT32, DOUBLE, BYTE_ARRAY
const CONVERTED_UTF8 = 0;
const REQUIRED = 0;
const PLAIN = 0;
const RLE = 3;
const DATA_PAGE = 0;
const UNCOMPRESSED = 0;

// Thrift compact protocol field types.
const T_I32 = 5;
const T_I64 = 6;
const T_BINARY = 8;
const T_LIST = 9;
const T_STRUCT = 12;

type ThriftValue =
  | { t: typeof T_I32 | typeof T_I64; v: number }
  | { t: typeof T_BINARY; v: string }
  | { t: typeof T_LIST; elem: number; items: ThriftValue[] }
  | { t: typeof T_STRUCT; fields: [number, ThriftValue][] };

const i32 = (v: number): ThriftValue => ({ t: T_I32, v });
const i64 = (v: number): ThriftValue => ({ t: T_I64, v });
const str = (v: string): ThriftValue => ({ t: T_BINARY, v });
const struct = (fields: [number, ThriftValue][]): ThriftValue => ({ t: T_STRUCT, fields });
const list = (elem: number, items: ThriftValue[]): ThriftValue => ({ t: T_LIST, elem, items });

export function minimalParquet(columns: ParquetColumn[]): Uint8Array {
  const rows = columns[0]?.values.length ?? 0;
  const parts: Uint8Array[] = [ascii('PAR1')];
  let offset = 4;
  const chunks: ThriftValue[] = [];
  for (const column of columns) {
    const data = plainValues(column);
    const header = encodeStruct(
      struct([
        [1, i32(DATA_PAGE)],
        [2, i32(data.length)],
        [3, i32(data.length)],
        [5, struct([[1, i32(rows)], [2, i32(PLAIN)], [3, i32(RLE)], [4, i32(RLE)]])],
      ]),
    );
    const size = header.length + data.length;
    chunks.push(
      struct([
        [2, i64(offset)],
        [
          3,
          struct([
            [1, i32(PHYSICAL_TYPE[column.type])],
            [2, list(T_I32, [i32(PLAIN)])],
            [3, list(T_BINARY, [str(column.name)])],
            [4, i32(UNCOMPRESSED)],
            [5, i64(rows)],
            [6, i64(size)],
            [7, i64(size)],
            [9, i64(offset)],
          ]),
        ],
      ]),
    );
    parts.push(header, data);
    offset += size;
  }
  const schema = [
    struct([[4, str('schema')], [5, i32(columns.length)]]),
    ...columns.map((column) =>
      struct([
        [1, i32(PHYSICAL_TYPE[column.type])],
        [3, i32(REQUIRED)],
        [4, str(column.name)],
        ...(column.type === 'utf8' ? ([[6, i32(CONVERTED_UTF8)]] as [number, ThriftValue][]) : []),
      ]),
    ),
  ];
  const footer = encodeStruct(
    struct([
      [1, i32(1)],
      [2, list(T_STRUCT, schema)],
      [3, i64(rows)],
      [4, list(T_STRUCT, [struct([[1, list(T_STRUCT, chunks)], [2, i64(offset - 4)], [3, i64(rows)]])])],
    ]),
  );
  const length = new Uint8Array(4);
  new DataView(length.buffer).setUint32(0, footer.length, true);
  parts.push(footer, length, ascii('PAR1'));
  return concat(parts);
}

function plainValues(column: ParquetColumn): Uint8Array {
  if (column.type === 'int32') {
    const view = new DataView(new ArrayBuffer(4 * column.values.length));
    column.values.forEach((v, i) => view.setInt32(4 * i, v, true));
    return new Uint8Array(view.buffer);
  }
  if (column.type === 'double') {
    const view = new DataView(new ArrayBuffer(8 * column.values.length));
    column.values.forEach((v, i) => view.setFloat64(8 * i, v, true));
    return new Uint8Array(view.buffer);
  }
  return concat(
    column.values.flatMap((v) => {
      const bytes = new TextEncoder().encode(v);
      const length = new Uint8Array(4);
      new DataView(length.buffer).setUint32(0, bytes.length, true);
      return [length, bytes];
    }),
  );
}

function encodeStruct(value: ThriftValue): Uint8Array {
  const out: number[] = [];
  writeValue(value, out);
  return Uint8Array.from(out);
}

function writeValue(value: ThriftValue, out: number[]): void {
  switch (value.t) {
    case T_I32:
    case T_I64:
      return writeVarint(zigzag(value.v), out);
    case T_BINARY: {
      const bytes = new TextEncoder().encode(value.v);
      writeVarint(BigInt(bytes.length), out);
      out.push(...bytes);
      return;
    }
    case T_LIST:
      if (value.items.length < 15) out.push((value.items.length << 4) | value.elem);
      else {
        out.push(0xf0 | value.elem);
        writeVarint(BigInt(value.items.length), out);
      }
      for (const item of value.items) writeValue(item, out);
      return;
    case T_STRUCT: {
      let last = 0;
      for (const [id, field] of value.fields) {
        out.push(((id - last) << 4) | field.t); // every delta here is 1..15
        writeValue(field, out);
        last = id;
      }
      out.push(0);
    }
  }
}

function zigzag(n: number): bigint {
  const v = BigInt(n);
  return (v << 1n) ^ (v >> 63n);
}

function writeVarint(value: bigint, out: number[]): void {
  let v = BigInt.asUintN(64, value);
  while (v >= 0x80n) {
    out.push(Number(v & 0x7fn) | 0x80);
    v >>= 7n;
  }
  out.push(Number(v));
}

function ascii(text: string): Uint8Array {
  return new TextEncoder().encode(text);
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}
