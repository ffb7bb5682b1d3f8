/**
 * The optimizers' options, in their own module because two layers use them: optim.ts builds
 * optimizers from them and pth/optimizer-state.ts reads them out of a checkpoint.
 */
export interface AdamOptions {
  /** Learning rate, 0 or more (as in PyTorch). Default 0.001. */
  lr?: number;
  /** Coefficients for the running averages of the gradient and its square. Default [0.9, 0.999]. */
  betas?: [number, number];
  /** Added to the denominator for numerical stability. Default 1e-8. */
  eps?: number;
  /** L2 penalty. Default 0. */
  weightDecay?: number;
  /** Use the AMSGrad variant. Default false. */
  amsgrad?: boolean;
}

export interface SGDOptions {
  /** Learning rate, 0 or more (as in PyTorch). Default 0.001. */
  lr?: number;
  /** Default 0. */
  momentum?: number;
  /** Default 0. */
  dampening?: number;
  /** Nesterov momentum (needs momentum > 0 and dampening 0). Default false. */
  nesterov?: boolean;
  /** L2 penalty. Default 0. */
  weightDecay?: number;
}
