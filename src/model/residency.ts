/**
 * How a pretrained model's weights are held:
 * resident: every weight in the backend as float32 (trainable in full, fastest);
 * streamed: matrices compact in host memory in their stored type, uploaded per layer (frozen);
 * auto: resident when the float32 model takes at most half of what the backend holds.
 */
export type WeightResidency = 'auto' | 'resident' | 'streamed';
export const WEIGHT_RESIDENCIES: readonly WeightResidency[] = ['auto', 'resident', 'streamed'];
