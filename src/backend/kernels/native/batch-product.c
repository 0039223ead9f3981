// Batched float32 products read in place from the tfjs-backend-wasm heap (the module imports its memory):
// c[i] = op(a[i]) op(b[i]) with op(a[i]) [m, k] and op(b[i]) [k, n], each operand stored as is or
// transposed. Attention's products are many small matrices; XNNPACK, the backend's product, packs every
// right matrix anew and needs transposed left operands copied first, which costs as much as the product.
// Here op(b[i]) is packed once per call into panels of 8 columns, and op(a[i]) is read with its strides.
//
// Work is split into tasks, one per block of ROWS_PER_TASK rows of one matrix, so that several threads
// can share a call: each runs tasks [first, last) with its own scratch (k * n rounded up to 8 floats).
// Built by build.sh; no static data and no addressed locals, so the module never writes the heap outside
// the buffers it is given.
#include <wasm_simd128.h>

#define NR 8
#define ROWS_PER_TASK 64 // as src/backend/kernels/batch-product.ts counts tasks

// Rows p..p+3 of a full panel from b stored [n, k] (transposed): two 4x4 blocks, each read as four
// columns of 4 values and written as four rows.
static inline void transpose_rows_4(const float* b, float* row, int k, int j0, int p) {
  for (int half = 0; half < 2; half++) {
    const float* col = b + (long)(j0 + half * 4) * k + p;
    v128_t c0 = wasm_v128_load(col), c1 = wasm_v128_load(col + k), c2 = wasm_v128_load(col + 2L * k), c3 = wasm_v128_load(col + 3L * k);
    v128_t lo01 = wasm_i32x4_shuffle(c0, c1, 0, 4, 1, 5), hi01 = wasm_i32x4_shuffle(c0, c1, 2, 6, 3, 7);
    v128_t lo23 = wasm_i32x4_shuffle(c2, c3, 0, 4, 1, 5), hi23 = wasm_i32x4_shuffle(c2, c3, 2, 6, 3, 7);
    wasm_v128_store(row + half * 4, wasm_i32x4_shuffle(lo01, lo23, 0, 1, 4, 5));
    wasm_v128_store(row + NR + half * 4, wasm_i32x4_shuffle(lo01, lo23, 2, 3, 6, 7));
    wasm_v128_store(row + 2 * NR + half * 4, wasm_i32x4_shuffle(hi01, hi23, 0, 1, 4, 5));
    wasm_v128_store(row + 3 * NR + half * 4, wasm_i32x4_shuffle(hi01, hi23, 2, 3, 6, 7));
  }
}

// op(b) [k, n] as panels of NR columns: panel t holds rows p = 0..k-1 of columns t*NR..t*NR+NR-1, zero
// beyond n. b is stored [k, n], or [n, k] when transposed.
static void pack_panels(const float* b, float* panels, int k, int n, int trans_b) {
  for (int t = 0; t * NR < n; t++) {
    int j0 = t * NR, width = n - j0 < NR ? n - j0 : NR;
    float* panel = panels + (long)t * k * NR;
    int p = 0;
    if (width == NR && trans_b) {
      for (; p + 4 <= k; p += 4) transpose_rows_4(b, panel + p * NR, k, j0, p);
    } else if (width == NR) {
      for (; p < k; p++) {
        wasm_v128_store(panel + p * NR, wasm_v128_load(b + (long)p * n + j0));
        wasm_v128_store(panel + p * NR + 4, wasm_v128_load(b + (long)p * n + j0 + 4));
      }
    }
    for (; p < k; p++) {
      for (int j = 0; j < NR; j++) panel[p * NR + j] = j >= width ? 0.0f : trans_b ? b[(long)(j0 + j) * k + p] : b[(long)p * n + j0 + j];
    }
  }
}

// Stores the first `width` columns of one output row.
static inline void store_row(float* c, v128_t low, v128_t high, int width) {
  if (width == NR) {
    wasm_v128_store(c, low);
    wasm_v128_store(c + 4, high);
    return;
  }
  // Lanes by constant index: an array here would put a stack frame in the heap.
  if (width > 0) c[0] = wasm_f32x4_extract_lane(low, 0);
  if (width > 1) c[1] = wasm_f32x4_extract_lane(low, 1);
  if (width > 2) c[2] = wasm_f32x4_extract_lane(low, 2);
  if (width > 3) c[3] = wasm_f32x4_extract_lane(low, 3);
  if (width > 4) c[4] = wasm_f32x4_extract_lane(high, 0);
  if (width > 5) c[5] = wasm_f32x4_extract_lane(high, 1);
  if (width > 6) c[6] = wasm_f32x4_extract_lane(high, 2);
}

#define SPLAT_A(r, p) wasm_v128_load32_splat(a + (long)(r) * row_step + (long)(p) * k_step)

// Four output rows of one panel: 8 accumulators, each element of op(a) broadcast once per row.
static inline void tile_4x8(const float* a, int row_step, int k_step, const float* panel, int k, float* c, int ldc, int width) {
  v128_t c0l = wasm_f32x4_splat(0), c0h = c0l, c1l = c0l, c1h = c0l, c2l = c0l, c2h = c0l, c3l = c0l, c3h = c0l;
  for (int p = 0; p < k; p++) {
    v128_t bl = wasm_v128_load(panel + p * NR), bh = wasm_v128_load(panel + p * NR + 4);
    v128_t a0 = SPLAT_A(0, p), a1 = SPLAT_A(1, p), a2 = SPLAT_A(2, p), a3 = SPLAT_A(3, p);
    c0l = wasm_f32x4_add(c0l, wasm_f32x4_mul(a0, bl));
    c0h = wasm_f32x4_add(c0h, wasm_f32x4_mul(a0, bh));
    c1l = wasm_f32x4_add(c1l, wasm_f32x4_mul(a1, bl));
    c1h = wasm_f32x4_add(c1h, wasm_f32x4_mul(a1, bh));
    c2l = wasm_f32x4_add(c2l, wasm_f32x4_mul(a2, bl));
    c2h = wasm_f32x4_add(c2h, wasm_f32x4_mul(a2, bh));
    c3l = wasm_f32x4_add(c3l, wasm_f32x4_mul(a3, bl));
    c3h = wasm_f32x4_add(c3h, wasm_f32x4_mul(a3, bh));
  }
  store_row(c, c0l, c0h, width);
  store_row(c + ldc, c1l, c1h, width);
  store_row(c + 2L * ldc, c2l, c2h, width);
  store_row(c + 3L * ldc, c3l, c3h, width);
}

static inline void tile_1x8(const float* a, int row_step, int k_step, const float* panel, int k, float* c, int width) {
  v128_t cl = wasm_f32x4_splat(0), ch = cl;
  for (int p = 0; p < k; p++) {
    v128_t a0 = SPLAT_A(0, p);
    cl = wasm_f32x4_add(cl, wasm_f32x4_mul(a0, wasm_v128_load(panel + p * NR)));
    ch = wasm_f32x4_add(ch, wasm_f32x4_mul(a0, wasm_v128_load(panel + p * NR + 4)));
  }
  store_row(c, cl, ch, width);
}

// Rows [i0, i1) of one product: each panel stays in cache while every row of the block passes over it.
static void rows_block(const float* a, int row_step, int k_step, const float* panels, float* c, int i0, int i1, int k, int n) {
  for (int t = 0; t * NR < n; t++) {
    const float* panel = panels + (long)t * k * NR;
    int j0 = t * NR, width = n - j0 < NR ? n - j0 : NR;
    int i = i0;
    for (; i + 4 <= i1; i += 4) tile_4x8(a + (long)i * row_step, row_step, k_step, panel, k, c + (long)i * n + j0, n, width);
    for (; i < i1; i++) tile_1x8(a + (long)i * row_step, row_step, k_step, panel, k, c + (long)i * n + j0, width);
  }
}

// Tasks [first, last) of the call: task t is rows block t % blocks of matrix t / blocks, with
// blocks = ceil(m / ROWS_PER_TASK). a_stride and b_stride are the values between matrices (0: one matrix
// shared by the whole batch); c is [batch, m, n].
__attribute__((export_name("batch_product")))
void batch_product(const float* a, const float* b, float* c, int m, int k, int n, int a_stride, int b_stride, int trans_a, int trans_b,
                   float* scratch, int first, int last) {
  int blocks = (m + ROWS_PER_TASK - 1) / ROWS_PER_TASK;
  int row_step = trans_a ? 1 : k, k_step = trans_a ? m : 1;
  int packed = -1;
  for (int task = first; task < last; task++) {
    int matrix = task / blocks, block = task % blocks;
    const float* b_matrix = b + (long)matrix * b_stride;
    if (packed < 0 || (b_stride != 0 && packed != matrix)) {
      pack_panels(b_matrix, scratch, k, n, trans_b);
      packed = matrix;
    }
    int i0 = block * ROWS_PER_TASK, i1 = i0 + ROWS_PER_TASK < m ? i0 + ROWS_PER_TASK : m;
    rows_block(a + (long)matrix * a_stride, row_step, k_step, scratch, c + (long)matrix * m * n, i0, i1, k, n);
  }
}
