import * as tf from '@tensorflow/tfjs-core';

/**
 * The most tensor memory a computation held at once, above what was already held when it started, counted
 * two ways.
 */
export interface TensorPeak {
  /**
   * tfjs's own count (tf.profile's peakBytes, sampled after each kernel): every tensor handle adds its
   * bytes, so a reshape or clone that shares a buffer counts it again, and kernels' scratch buffers are
   * not seen.
   */
  countedBytes: number;
  /**
   * Bytes of distinct buffers allocated on the wasm heap (tensors and kernel scratch alike), at their
   * peak: the memory the computation really needed. null on other backends.
   */
  heapBytes: number | null;
}

/** Measures `run`'s peak; `run` disposes what it creates (what it leaves alive counts in the peak too). */
export async function measureTensorPeak(run: () => void): Promise<TensorPeak> {
  const held = tf.memory().numBytes;
  const heap = WasmHeapTracker.start();
  try {
    const { kernels } = await tf.profile(run);
    const counted = kernels.reduce((peak, kernel) => Math.max(peak, kernel.totalBytesSnapshot), held);
    return { countedBytes: counted - held, heapBytes: heap?.peakBytes ?? null };
  } finally {
    heap?.stop();
  }
}

/** The allocator calls BackendWasm makes for every tensor buffer (an Emscripten module's exports). */
interface WasmAllocator {
  _malloc(bytes: number): number;
  _free(pointer: number): void;
}

/**
 * Counts live bytes of the buffers allocated through the wasm backend's `_malloc` while it runs, by
 * wrapping the module's exports (tfjs exposes no allocation hook). Buffers that existed before start()
 * are not counted, and freeing them changes nothing.
 */
class WasmHeapTracker {
  private readonly live = new Map<number, number>(); // pointer -> bytes
  private liveBytes = 0;
  peakBytes = 0;
  private readonly wrapper: WasmAllocator;

  private constructor(
    private readonly wasm: WasmAllocator,
    private readonly original: WasmAllocator,
  ) {
    this.wrapper = {
      _malloc: (bytes) => this.allocated(original._malloc.call(wasm, bytes), bytes),
      _free: (pointer) => {
        this.freed(pointer);
        original._free.call(wasm, pointer);
      },
    };
    Object.assign(wasm, this.wrapper);
  }

  static start(): WasmHeapTracker | null {
    const wasm = tf.getBackend() === 'wasm' ? (tf.backend() as unknown as { wasm?: WasmAllocator }).wasm : undefined;
    if (typeof wasm?._malloc !== 'function' || typeof wasm._free !== 'function') return null;
    // Emscripten binds its exports lazily: the first call replaces Module._malloc (and a wrapper with it).
    wasm._free(wasm._malloc(8));
    return new WasmHeapTracker(wasm, { _malloc: wasm._malloc, _free: wasm._free });
  }

  stop(): void {
    const bypassed = this.wasm._malloc !== this.wrapper._malloc || this.wasm._free !== this.wrapper._free;
    Object.assign(this.wasm, this.original);
    if (bypassed) throw new Error('measureTensorPeak: the wasm module replaced its _malloc or _free while measuring');
  }

  private allocated(pointer: number, bytes: number): number {
    this.live.set(pointer >>> 0, bytes);
    this.liveBytes += bytes;
    this.peakBytes = Math.max(this.peakBytes, this.liveBytes);
    return pointer;
  }

  private freed(pointer: number): void {
    const bytes = this.live.get(pointer >>> 0);
    if (bytes === undefined) return;
    this.live.delete(pointer >>> 0);
    this.liveBytes -= bytes;
  }
}
