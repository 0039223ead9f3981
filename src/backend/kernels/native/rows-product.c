// Products with weight rows read in place from the tfjs-backend-wasm heap (the module imports its memory):
// y[m, r] = sum_c x[m, c] * w[r, c] for x [M, cols] float32 and w [rows, cols], BF16 (the upper halves of
// float32 values) or float32. Built by build.sh; no static data and no addressed locals, so the module never
// writes the heap outside the buffers it is given. cols must be a multiple of 8.
#include <stdint.h>
#include <wasm_simd128.h>

// The 8 BF16 values at p as two float32x4: zero-extended to 32 bits, then shifted into the upper half.
#define WIDEN_LOW(v) wasm_i32x4_shl(wasm_u32x4_extend_low_u16x8(v), 16)
#define WIDEN_HIGH(v) wasm_i32x4_shl(wasm_u32x4_extend_high_u16x8(v), 16)

static inline float lane_sum(v128_t v) {
  return (wasm_f32x4_extract_lane(v, 0) + wasm_f32x4_extract_lane(v, 1)) + (wasm_f32x4_extract_lane(v, 2) + wasm_f32x4_extract_lane(v, 3));
}

// One input row: four weight rows at a time, each widened as it is read.
static void one_row(const uint16_t* w, const float* x, float* y, int rows, int cols) {
  int r = 0;
  for (; r + 4 <= rows; r += 4) {
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
  for (; r < rows; r++) {
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

// Several input rows: each weight row is widened once into `scratch` (cols floats), then multiplied with
// every input row, so the weights are read from memory once whatever M is.
static void many_rows(const uint16_t* w, const float* x, float* y, float* scratch, int m_count, int rows, int cols) {
  for (int r = 0; r < rows; r++) {
    const uint16_t* wr = w + (long)r * cols;
    for (int c = 0; c < cols; c += 8) {
      v128_t v = wasm_v128_load(wr + c);
      wasm_v128_store(scratch + c, WIDEN_LOW(v));
      wasm_v128_store(scratch + c + 4, WIDEN_HIGH(v));
    }
    for (int m = 0; m < m_count; m++) {
      const float* xm = x + (long)m * cols;
      v128_t a = wasm_f32x4_splat(0), b = a;
      for (int c = 0; c < cols; c += 8) {
        a = wasm_f32x4_add(a, wasm_f32x4_mul(wasm_v128_load(scratch + c), wasm_v128_load(xm + c)));
        b = wasm_f32x4_add(b, wasm_f32x4_mul(wasm_v128_load(scratch + c + 4), wasm_v128_load(xm + c + 4)));
      }
      y[(long)m * rows + r] = lane_sum(wasm_f32x4_add(a, b));
    }
  }
}

__attribute__((export_name("bf16_rows_product")))
void bf16_rows_product(const uint16_t* w, const float* x, float* y, float* scratch, int m_count, int rows, int cols) {
  if (m_count == 1) one_row(w, x, y, rows, cols);
  else many_rows(w, x, y, scratch, m_count, rows, cols);
}

// Float32 rows, four at a time, each group multiplied with every input row while it is in cache: one pass
// over the weights whatever M is.
__attribute__((export_name("f32_rows_product")))
void f32_rows_product(const float* w, const float* x, float* y, int m_count, int rows, int cols) {
  int r = 0;
  for (; r + 4 <= rows; r += 4) {
    const float* w0 = w + (long)r * cols;
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
  for (; r < rows; r++) {
    const float* w0 = w + (long)r * cols;
    for (int m = 0; m < m_count; m++) {
      const float* xm = x + (long)m * cols;
      v128_t a0 = wasm_f32x4_splat(0), b0 = a0;
      for (int c = 0; c < cols; c += 8) {
        a0 = wasm_f32x4_add(a0, wasm_f32x4_mul(wasm_v128_load(w0 + c), wasm_v128_load(xm + c)));
        b0 = wasm_f32x4_add(b0, wasm_f32x4_mul(wasm_v128_load(w0 + c + 4), wasm_v128_load(xm + c + 4)));
      }
      y[(long)m * rows + r] = lane_sum(wasm_f32x4_add(a0, b0));
    }
  }
}
