/**
 * How an image becomes 28x28: 'mnist' fits the drawing's bounding box into 20x20 keeping its aspect
 * ratio and centres it by centre of mass in 28x28 (how MNIST itself was made); 'stretch' resizes the
 * whole image to 28x28; 'pad' keeps the aspect ratio and pads with black. (Kept apart from image.ts
 * so the command line can offer the choices without loading sharp.)
 */
export type Fit = 'mnist' | 'stretch' | 'pad';
export const FITS: readonly Fit[] = ['mnist', 'stretch', 'pad'];
/**
 * Every image is prepared so unless told otherwise (or a model's metadata says how it was trained).
 * Chosen by measurement (scripts/measure-fit.mjs; the table is in docs/measurements.md, "Which --fit"): on 28x28 exports, larger
 * RGB photos and dark-on-light drawings it was within 0.2 points of the best fit; 'mnist' lost
 * 13-29 points on them.
 */
export const DEFAULT_FIT: Fit = 'stretch';

export interface ImageOptions {
  /** Turn dark-on-light drawings into MNIST's light-on-dark. Default false. */
  invert?: boolean;
  /** Default DEFAULT_FIT ('stretch'). */
  fit?: Fit;
}
