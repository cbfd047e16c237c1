"""Training helpers the labs share: curves, gradient norms, quiet fits, seeds, kernel-only L2.

The lectures' "training ConvNets well" story (Fix deck, CIFAR-100 ablation: base -> +BatchNorm
-> +augmentation -> +regularization; ISPR deck: vanishing gradients, ResNet, BatchNorm) needs
the same few tools in several labs, so they live here once instead of as copied loops:

- ``compare_histories`` draws train (solid) and validation (dashed) curves of several runs side
  by side, one subplot per metric; a ``"phase_boundary"`` key marks where fine-tuning starts.
- ``gradient_norms`` measures the L2 norm of the loss gradient for every kernel on one batch
  (vanishing gradients: the first layers of a deep plain net get tiny gradients; residual
  connections and BatchNorm keep them up).  One function, dispatching on the Keras backend.
- ``fit_quietly`` / ``EpochProgress`` print one line per epoch instead of Keras's progress bars.
- ``set_seed`` makes a run repeatable; ``set_deterministic`` makes it repeatable on any number
  of cores (one intra-op thread).
- ``weight_scale_sweep`` trains one model from kernels drawn at several scales, the state reset
  in between (CS231n's BatchNorm-against-initialisation sweep: without BatchNorm only a narrow
  band of scales trains; with it, nearly any scale does).
- ``l2_on_kernels_only`` puts weight decay on conv/dense kernels only, as the Fix deck does:
  "only the weights of the convolution and linear layers are regularized (not the bias, nor the
  coefficients of the Batch Norm)".

One module per job: :mod:`~cnnlab.train.histories` (``compare_histories``),
:mod:`~cnnlab.train.gradients` (``gradient_norms``, ``GradientNorms``),
:mod:`~cnnlab.train.progress` (``fit_quietly``, ``EpochProgress``),
:mod:`~cnnlab.train.determinism` (``set_seed``, ``set_deterministic``),
:mod:`~cnnlab.train.initialization` (``weight_scale_sweep``) and
:mod:`~cnnlab.train.regularization` (``l2_on_kernels_only``).
"""

from cnnlab.train.determinism import set_deterministic, set_seed
from cnnlab.train.gradients import GradientNorms, gradient_norms
from cnnlab.train.histories import compare_histories
from cnnlab.train.initialization import weight_scale_sweep
from cnnlab.train.progress import EpochProgress, fit_quietly
from cnnlab.train.regularization import l2_on_kernels_only

__all__ = [
    "EpochProgress",
    "GradientNorms",
    "compare_histories",
    "fit_quietly",
    "gradient_norms",
    "l2_on_kernels_only",
    "set_deterministic",
    "set_seed",
    "weight_scale_sweep",
]
