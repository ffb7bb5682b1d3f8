/**
 * How an image becomes 28x28: 'mnist' fits the drawing's bounding box into 20x20 keeping its aspect
 * ratio and centres it by centre of mass in 28x28 (how MNIST itself was made); 'stretch' resizes the
 * whole image to 28x28; 'pad' keeps the aspect ratio and pads with black. (Kept apart from image.ts
 * so the command line can offer the choices without loading sharp.)
 */
export type Fit = 'mnist' | 'stretch' | 'pad';
export const FITS: readonly Fit[] = ['mnist', 'stretch', 'pad'];

export interface ImageOptions {
  /** Turn dark-on-light drawings into MNIST's light-on-dark. Default false. */
  invert?: boolean;
  /** Default 'stretch' for single images; the folder loaders default to 'mnist'. */
  fit?: Fit;
}
