// Products with weight rows read in place from the tfjs-backend-wasm heap (the module imports its memory):
// y[m, r] = sum_c x[m, c] * w[r, c] for x [M, cols] float32 and w [rows, cols], BF16 (the upper halves of
// float32 values), float32 or GGML blocks. Each export computes the weight rows [first, last) alone, so that
// threads can share a product (src/backend/kernels/native-threads.ts), each with its own scratch. Built by
// build.sh; no static data and no addressed locals, so the module never writes the heap outside the buffers
// it is given. cols must be a multiple of 8.
#include <stdint.h>
#include <wasm_simd128.h>

// The 8 BF16 values at p as two float32x4: zero-extended to 32 bits, then shifted into the upper half.
#define WIDEN_LOW(v) wasm_i32x4_shl(wasm_u32x4_extend_low_u16x8(v), 16)
#define WIDEN_HIGH(v) wasm_i32x4_shl(wasm_u32x4_extend_high_u16x8(v), 16)

static inline float lane_sum(v128_t v) {
  return (wasm_f32x4_extract_lane(v, 0) + wasm_f32x4_extract_lane(v, 1)) + (wasm_f32x4_extract_lane(v, 2) + wasm_f32x4_extract_lane(v, 3));
}

// One input row: four weight rows at a time, each widened as it is read.
static void one_row(const uint16_t* w, const float* x, float* y, int cols, int first, int last) {
  int r = first;
  for (; r + 4 <= last; r += 4) {
    const uint16_t* w0 = w + (long)r * cols;
    const uint16_t* w1 = w0 + cols;
    const uint16_t* w2 = w1 + cols;
    const uint16_t* w3 = w2 + cols;
    v128_t a0 = wasm_f32x4_splat(0), a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0;
    for (int c = 0; c < cols; c += 8) {
      v128_t xl = wasm_v128_load(x + c), xh = wasm_v128_load(x + c + 4);
      v128_t v0 = wasm_v128_load(w0 + c), v1 = wasm_v128_load(w1 + c), v2 = wasm_v128_load(w2 + c), v3 = wasm_v128_load(w3 + c);
      a0 = wasm_f32x4_add(a0, wasm_f32x4_mul(WIDEN_LOW(v0), xl));
      b0 = wasm_f32x4_add(b0, wasm_f32x4_mul(WIDEN_HIGH(v0), xh));
      a1 = wasm_f32x4_add(a1, wasm_f32x4_mul(WIDEN_LOW(v1), xl));
      b1 = wasm_f32x4_add(b1, wasm_f32x4_mul(WIDEN_HIGH(v1), xh));
      a2 = wasm_f32x4_add(a2, wasm_f32x4_mul(WIDEN_LOW(v2), xl));
      b2 = wasm_f32x4_add(b2, wasm_f32x4_mul(WIDEN_HIGH(v2), xh));
      a3 = wasm_f32x4_add(a3, wasm_f32x4_mul(WIDEN_LOW(v3), xl));
      b3 = wasm_f32x4_add(b3, wasm_f32x4_mul(WIDEN_HIGH(v3), xh));
    }
    y[r] = lane_sum(wasm_f32x4_add(a0, b0));
    y[r + 1] = lane_sum(wasm_f32x4_add(a1, b1));
    y[r + 2] = lane_sum(wasm_f32x4_add(a2, b2));
    y[r + 3] = lane_sum(wasm_f32x4_add(a3, b3));
  }
  for (; r < last; r++) {
    const uint16_t* w0 = w + (long)r * cols;
    v128_t a0 = wasm_f32x4_splat(0), b0 = a0;
    for (int c = 0; c < cols; c += 8) {
      v128_t v0 = wasm_v128_load(w0 + c);
      a0 = wasm_f32x4_add(a0, wasm_f32x4_mul(WIDEN_LOW(v0), wasm_v128_load(x + c)));
      b0 = wasm_f32x4_add(b0, wasm_f32x4_mul(WIDEN_HIGH(v0), wasm_v128_load(x + c + 4)));
    }
    y[r] = lane_sum(wasm_f32x4_add(a0, b0));
  }
}

// y[m, r..r+3] for every input row m, of the four float32 weight rows at w (cols apart): each input row is
// read once for four weight rows while they are in cache.
static void four_rows(const float* w, const float* x, float* y, int m_count, int rows, int cols, int r) {
  const float* w0 = w;
  const float* w1 = w0 + cols;
  const float* w2 = w1 + cols;
  const float* w3 = w2 + cols;
  for (int m = 0; m < m_count; m++) {
    const float* xm = x + (long)m * cols;
    v128_t a0 = wasm_f32x4_splat(0), a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0;
    for (int c = 0; c < cols; c += 8) {
      v128_t xl = wasm_v128_load(xm + c), xh = wasm_v128_load(xm + c + 4);
      a0 = wasm_f32x4_add(a0, wasm_f32x4_mul(wasm_v128_load(w0 + c), xl));
      b0 = wasm_f32x4_add(b0, wasm_f32x4_mul(wasm_v128_load(w0 + c + 4), xh));
      a1 = wasm_f32x4_add(a1, wasm_f32x4_mul(wasm_v128_load(w1 + c), xl));
      b1 = wasm_f32x4_add(b1, wasm_f32x4_mul(wasm_v128_load(w1 + c + 4), xh));
      a2 = wasm_f32x4_add(a2, wasm_f32x4_mul(wasm_v128_load(w2 + c), xl));
      b2 = wasm_f32x4_add(b2, wasm_f32x4_mul(wasm_v128_load(w2 + c + 4), xh));
      a3 = wasm_f32x4_add(a3, wasm_f32x4_mul(wasm_v128_load(w3 + c), xl));
      b3 = wasm_f32x4_add(b3, wasm_f32x4_mul(wasm_v128_load(w3 + c + 4), xh));
    }
    float* ym = y + (long)m * rows + r;
    ym[0] = lane_sum(wasm_f32x4_add(a0, b0));
    ym[1] = lane_sum(wasm_f32x4_add(a1, b1));
    ym[2] = lane_sum(wasm_f32x4_add(a2, b2));
    ym[3] = lane_sum(wasm_f32x4_add(a3, b3));
  }
}

// y[m, r] for every input row m, of the float32 weight row at w.
static void single_row(const float* w, const float* x, float* y, int m_count, int rows, int cols, int r) {
  for (int m = 0; m < m_count; m++) {
    const float* xm = x + (long)m * cols;
    v128_t a = wasm_f32x4_splat(0), b = a;
    for (int c = 0; c < cols; c += 8) {
      a = wasm_f32x4_add(a, wasm_f32x4_mul(wasm_v128_load(w + c), wasm_v128_load(xm + c)));
      b = wasm_f32x4_add(b, wasm_f32x4_mul(wasm_v128_load(w + c + 4), wasm_v128_load(xm + c + 4)));
    }
    y[(long)m * rows + r] = lane_sum(wasm_f32x4_add(a, b));
  }
}

// `count` consecutive BF16 rows widened to float32 into `out`.
static void widen_rows(const uint16_t* w, float* out, int count, int cols) {
  for (long c = 0; c < (long)count * cols; c += 8) {
    v128_t v = wasm_v128_load(w + c);
    wasm_v128_store(out + c, WIDEN_LOW(v));
    wasm_v128_store(out + c + 4, WIDEN_HIGH(v));
  }
}

// Several input rows: four weight rows at a time are widened into `scratch` (4 x cols floats), then
// multiplied with every input row, so the weights are read from memory once whatever M is.
static void many_rows(const uint16_t* w, const float* x, float* y, float* scratch, int m_count, int rows, int cols, int first, int last) {
  int r = first;
  for (; r + 4 <= last; r += 4) {
    widen_rows(w + (long)r * cols, scratch, 4, cols);
    four_rows(scratch, x, y, m_count, rows, cols, r);
  }
  for (; r < last; r++) {
    widen_rows(w + (long)r * cols, scratch, 1, cols);
    single_row(scratch, x, y, m_count, rows, cols, r);
  }
}

__attribute__((export_name("bf16_rows_product")))
void bf16_rows_product(const uint16_t* w, const float* x, float* y, int m_count, int rows, int cols, float* scratch, int first, int last) {
  if (m_count == 1) one_row(w, x, y, cols, first, last);
  else many_rows(w, x, y, scratch, m_count, rows, cols, first, last);
}

// Float32 rows, four at a time, each group multiplied with every input row while it is in cache: one pass
// over the weights whatever M is.
__attribute__((export_name("f32_rows_product")))
void f32_rows_product(const float* w, const float* x, float* y, int m_count, int rows, int cols, float* unused_scratch, int first, int last) {
  int r = first;
  for (; r + 4 <= last; r += 4) four_rows(w + (long)r * cols, x, y, m_count, rows, cols, r);
  for (; r < last; r++) single_row(w + (long)r * cols, x, y, m_count, rows, cols, r);
}

// Quantized weight rows (GGML blocks, as GGUF files store them): each row is dequantized into `scratch`
// (cols floats) with the arithmetic of ggml's dequantize_row_*, then multiplied with every input row.
// Rows start every `row_stride` bytes (a row's blocks, padded to whole int32 words).

static inline float half_to_float(const uint8_t* p) {
  uint32_t h = (uint32_t)p[0] | (uint32_t)p[1] << 8;
  uint32_t sign = (h & 0x8000u) << 16, exponent = (h >> 10) & 0x1f, mantissa = h & 0x3ff;
  if (exponent == 0) {
    float subnormal = (float)mantissa * (1.0f / 16777216.0f); // mantissa * 2^-24
    return sign ? -subnormal : subnormal;
  }
  uint32_t bits = sign | (exponent == 31 ? 0x7f800000u | mantissa << 13 : (exponent + 112) << 23 | mantissa << 13);
  return __builtin_bit_cast(float, bits);
}

// Sixteen signed bytes as float32, times `scale`, stored at out[0..15].
static inline void store_i8x16(float* out, v128_t q, v128_t scale) {
  v128_t low = wasm_i16x8_extend_low_i8x16(q), high = wasm_i16x8_extend_high_i8x16(q);
  wasm_v128_store(out, wasm_f32x4_mul(wasm_f32x4_convert_i32x4(wasm_i32x4_extend_low_i16x8(low)), scale));
  wasm_v128_store(out + 4, wasm_f32x4_mul(wasm_f32x4_convert_i32x4(wasm_i32x4_extend_high_i16x8(low)), scale));
  wasm_v128_store(out + 8, wasm_f32x4_mul(wasm_f32x4_convert_i32x4(wasm_i32x4_extend_low_i16x8(high)), scale));
  wasm_v128_store(out + 12, wasm_f32x4_mul(wasm_f32x4_convert_i32x4(wasm_i32x4_extend_high_i16x8(high)), scale));
}

// Sixteen unsigned bytes (below 128) as float32: scale * q - shift, stored at out[0..15].
static inline void store_u8x16_affine(float* out, v128_t q, v128_t scale, v128_t shift) {
  v128_t low = wasm_u16x8_extend_low_u8x16(q), high = wasm_u16x8_extend_high_u8x16(q);
  wasm_v128_store(out, wasm_f32x4_sub(wasm_f32x4_mul(wasm_f32x4_convert_i32x4(wasm_u32x4_extend_low_u16x8(low)), scale), shift));
  wasm_v128_store(out + 4, wasm_f32x4_sub(wasm_f32x4_mul(wasm_f32x4_convert_i32x4(wasm_u32x4_extend_high_u16x8(low)), scale), shift));
  wasm_v128_store(out + 8, wasm_f32x4_sub(wasm_f32x4_mul(wasm_f32x4_convert_i32x4(wasm_u32x4_extend_low_u16x8(high)), scale), shift));
  wasm_v128_store(out + 12, wasm_f32x4_sub(wasm_f32x4_mul(wasm_f32x4_convert_i32x4(wasm_u32x4_extend_high_u16x8(high)), scale), shift));
}

// Q8_0 (34 bytes a block of 32): d f16 @0, qs int8[32] @2; x = d * q.
static void dequantize_q8_0(const uint8_t* w, float* out, int cols) {
  for (int b = 0; b < cols / 32; b++, w += 34, out += 32) {
    v128_t d = wasm_f32x4_splat(half_to_float(w));
    store_i8x16(out, wasm_v128_load(w + 2), d);
    store_i8x16(out + 16, wasm_v128_load(w + 18), d);
  }
}

// The 6-bit scale and min of sub-block j of a Q4_K block (ggml's get_scale_min_k4).
static inline int k4_scale(int j, const uint8_t* q) {
  return j < 4 ? q[j] & 63 : (q[j + 4] & 0xf) | ((q[j - 4] >> 6) << 4);
}
static inline int k4_min(int j, const uint8_t* q) {
  return j < 4 ? q[j + 4] & 63 : (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
}

// Q4_K (144 bytes a block of 256): d f16 @0, dmin f16 @2, scales u8[12] @4, qs u8[128] @16. Each 32 bytes
// of qs hold two sub-blocks of 32: low nibbles, then high; x = d * scale * q - dmin * min.
static void dequantize_q4_k(const uint8_t* w, float* out, int cols) {
  const v128_t nibble = wasm_i8x16_splat(0x0f);
  for (int b = 0; b < cols / 256; b++, w += 144, out += 256) {
    float d = half_to_float(w), dmin = half_to_float(w + 2);
    const uint8_t* scales = w + 4;
    for (int j = 0; j < 4; j++) {
      v128_t scale_low = wasm_f32x4_splat(d * (float)k4_scale(2 * j, scales)), min_low = wasm_f32x4_splat(dmin * (float)k4_min(2 * j, scales));
      v128_t scale_high = wasm_f32x4_splat(d * (float)k4_scale(2 * j + 1, scales)), min_high = wasm_f32x4_splat(dmin * (float)k4_min(2 * j + 1, scales));
      for (int h = 0; h < 2; h++) {
        v128_t q = wasm_v128_load(w + 16 + 32 * j + 16 * h);
        store_u8x16_affine(out + 64 * j + 16 * h, wasm_v128_and(q, nibble), scale_low, min_low);
        store_u8x16_affine(out + 64 * j + 32 + 16 * h, wasm_u8x16_shr(q, 4), scale_high, min_high);
      }
    }
  }
}

// Q6_K (210 bytes a block of 256): ql u8[128] @0, qh u8[64] @128, scales int8[16] @192, d f16 @208. Each
// half of 128 values takes 64 bytes of ql and 32 of qh; x = d * scale * (q - 32) with q of 6 bits.
static void dequantize_q6_k(const uint8_t* w, float* out, int cols) {
  const v128_t nibble = wasm_i8x16_splat(0x0f), two_bits = wasm_i8x16_splat(3), offset = wasm_i8x16_splat(32);
  for (int b = 0; b < cols / 256; b++, w += 210, out += 256) {
    float d = half_to_float(w + 208);
    const int8_t* scales = (const int8_t*)(w + 192);
    for (int half = 0; half < 2; half++) {
      const uint8_t* ql = w + 64 * half;
      const uint8_t* qh = w + 128 + 32 * half;
      const int8_t* sc = scales + 8 * half;
      float* y = out + 128 * half;
      for (int l = 0; l < 32; l += 16) {
        int is = l / 16;
        v128_t low_a = wasm_v128_load(ql + l), low_b = wasm_v128_load(ql + l + 32), high = wasm_v128_load(qh + l);
        v128_t q1 = wasm_v128_or(wasm_v128_and(low_a, nibble), wasm_i8x16_shl(wasm_v128_and(high, two_bits), 4));
        v128_t q2 = wasm_v128_or(wasm_v128_and(low_b, nibble), wasm_i8x16_shl(wasm_v128_and(wasm_u8x16_shr(high, 2), two_bits), 4));
        v128_t q3 = wasm_v128_or(wasm_u8x16_shr(low_a, 4), wasm_i8x16_shl(wasm_v128_and(wasm_u8x16_shr(high, 4), two_bits), 4));
        v128_t q4 = wasm_v128_or(wasm_u8x16_shr(low_b, 4), wasm_i8x16_shl(wasm_u8x16_shr(high, 6), 4));
        store_i8x16(y + l, wasm_i8x16_sub(q1, offset), wasm_f32x4_splat(d * (float)sc[is]));
        store_i8x16(y + l + 32, wasm_i8x16_sub(q2, offset), wasm_f32x4_splat(d * (float)sc[is + 2]));
        store_i8x16(y + l + 64, wasm_i8x16_sub(q3, offset), wasm_f32x4_splat(d * (float)sc[is + 4]));
        store_i8x16(y + l + 96, wasm_i8x16_sub(q4, offset), wasm_f32x4_splat(d * (float)sc[is + 6]));
      }
    }
  }
}

// Q5_0 (22 bytes a block of 32): d f16 @0, qh u32 @2 (bit j: the fifth bit of value j), qs u8[16] @6 (low
// nibbles: values 0..15, high: 16..31); x = d * (q - 16). Each value's fifth bit is picked out of qh's bytes
// by a per-lane mask.
static void dequantize_q5_0(const uint8_t* w, float* out, int cols) {
  const v128_t nibble = wasm_i8x16_splat(0x0f), fifth = wasm_i8x16_splat(0x10), offset = wasm_i8x16_splat(16), zero = wasm_i8x16_splat(0);
  const v128_t lane_bit = wasm_u8x16_make(1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128);
  for (int b = 0; b < cols / 32; b++, w += 22, out += 32) {
    v128_t d = wasm_f32x4_splat(half_to_float(w));
    v128_t qh = wasm_i32x4_splat((int)((uint32_t)w[2] | (uint32_t)w[3] << 8 | (uint32_t)w[4] << 16 | (uint32_t)w[5] << 24));
    v128_t bits_low = wasm_i8x16_shuffle(qh, qh, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1);
    v128_t bits_high = wasm_i8x16_shuffle(qh, qh, 2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3);
    v128_t high_low = wasm_v128_and(wasm_i8x16_ne(wasm_v128_and(bits_low, lane_bit), zero), fifth);
    v128_t high_high = wasm_v128_and(wasm_i8x16_ne(wasm_v128_and(bits_high, lane_bit), zero), fifth);
    v128_t qs = wasm_v128_load(w + 6);
    store_i8x16(out, wasm_i8x16_sub(wasm_v128_or(wasm_v128_and(qs, nibble), high_low), offset), d);
    store_i8x16(out + 16, wasm_i8x16_sub(wasm_v128_or(wasm_u8x16_shr(qs, 4), high_high), offset), d);
  }
}

// Formats of quant_rows_product, as src/backend/kernels/rows-product.ts numbers them.
enum { FORMAT_Q8_0 = 0, FORMAT_Q4_K = 1, FORMAT_Q6_K = 2, FORMAT_Q5_0 = 3 };

// The weight row at `row`, dequantized into `out` (cols floats).
static void dequantize_row(int format, const uint8_t* row, float* out, int cols) {
  if (format == FORMAT_Q8_0) dequantize_q8_0(row, out, cols);
  else if (format == FORMAT_Q4_K) dequantize_q4_k(row, out, cols);
  else if (format == FORMAT_Q6_K) dequantize_q6_k(row, out, cols);
  else dequantize_q5_0(row, out, cols);
}

// Four weight rows at a time are dequantized into `scratch` (4 x cols floats), then multiplied with every
// input row.
__attribute__((export_name("quant_rows_product")))
void quant_rows_product(int format, const uint8_t* w, int row_stride, const float* x, float* y, int m_count, int rows, int cols, float* scratch, int first,
                        int last) {
  int r = first;
  for (; r + 4 <= last; r += 4) {
    for (int i = 0; i < 4; i++) dequantize_row(format, w + (long)(r + i) * row_stride, scratch + (long)i * cols, cols);
    four_rows(scratch, x, y, m_count, rows, cols, r);
  }
  for (; r < last; r++) {
    dequantize_row(format, w + (long)r * row_stride, scratch, cols);
    single_row(scratch, x, y, m_count, rows, cols, r);
  }
}
