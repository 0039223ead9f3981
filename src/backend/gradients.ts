// tfjs-core's Node build registers no gradient functions: they ship in the union package's bundle.
// Importing it registers every gradient (and the chained tensor methods) in tfjs's process-wide
// registries, which the engine of @tensorflow/tfjs-core shares, so tf.grad works on every backend.
import '@tensorflow/tfjs';
