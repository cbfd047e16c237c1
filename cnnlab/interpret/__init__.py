"""Looking inside a ConvNet, and fooling it: filters, feature maps, occlusions, saliency,
Grad-CAM and adversarial examples.

The ISPR Pisa and Fix decks close with *interpreting* ConvNets; the Rennes deck with their
limits.  Each picture here is one function on a trained Keras model:

- :func:`plot_filters` -- the first-layer kernels drawn as images ("visualize kernel weights:
  works only for early convolutional layers"); :func:`feature_maps` and
  :func:`plot_feature_maps` -- what each convolution outputs for one image.
- :func:`occlusion_map` -- Zeiler & Fergus (2014): slide a grey square over the image and
  record how much the class score drops at each position.
- :func:`top_activating_patches` and :func:`plot_top_patches` -- Zeiler & Fergus's "top-9
  image patches" of a unit: over a set of images, the receptive-field crops where one channel
  of a mid-level layer responds most (:func:`top_k_activations`, :func:`field_window`,
  :func:`crop_window` are its NumPy steps).
- :func:`saliency_map` -- Simonyan, Vedaldi & Zisserman (2014): the gradient of the class
  score with respect to the input pixels, ``|d S_c / d x|`` (max over colour channels).
  ``method="deconvnet"`` and ``method="guided"`` change only how the backward pass crosses a
  ReLU (the Fix deck: "Deconvnet computes approximately the gradient ... It differs in the way
  the ReLu is integrated"; Springenberg et al. (2015) introduce guided backpropagation);
  ``method="smoothgrad"`` averages the gradient over noisy copies (Smilkov et al., 2017).
- :func:`grad_cam` -- Selvaraju et al. (2017): weights ``a_k = mean_ij d S_c / d A_k(i, j)``
  over the last convolutional feature maps ``A``, heat map ``ReLU(sum_k a_k A_k)``, resized to
  the image; :func:`overlay` draws any heat map over its image.
- :func:`effective_receptive_field` -- Luo et al. (2016), the Fix deck's *Effective receptive
  field*: ``|d y / d x|`` of the centre unit of a model's output, where the gradient of a unit
  actually falls inside its theoretical receptive field (Lab 02).
- :func:`fgsm` and :func:`pgd` -- adversarial examples (Goodfellow et al., 2015; Kurakin et
  al., 2017; Madry et al., 2018): the Rennes deck's macaw, "Ara 97 %" turned into
  "Bookshelf 99 %" by noise too small to see.

The class score ``S_c``
    Simonyan et al. differentiate the *unnormalised* class score, not the softmax probability
    (the probability of class c also rises when the other classes' scores fall).  When a model
    ends with a softmax -- a layer with ``activation="softmax"`` (``Dense``, ``Conv2D``...), a
    ``layers.Softmax`` or an ``Activation("softmax")`` -- the score is the logit before it:
    the softmax is dropped (for a layer with the activation built in, a copy of that layer with
    ``activation="linear"`` and the same weights).  A model without a final softmax is taken to
    output scores already.  :func:`saliency_map`, :func:`grad_cam`, :func:`fgsm` and
    :func:`pgd` use these logits (the attacks: the cross-entropy computed from them);
    :func:`occlusion_map` reports the model's own output (probabilities, with a softmax).

Gradients on every backend
    :func:`input_gradient` is the one place that differentiates: ``tf.GradientTape`` under
    TensorFlow, ``jax.grad`` under JAX, ``torch.autograd.grad`` under PyTorch (written but not
    tested here: no PyTorch in the kit).  Everything else is ``keras.ops``.  Models are always
    called with ``training=False`` (batch norm uses its moving statistics, dropout is off).

Pixels and ``preprocess``
    Every function takes the image as the model's *input*.  If the model expects preprocessed
    input (e.g. ``(x - 127) / 128`` for EfficientNet-Lite0) and you want gradients, maps and
    attacks in raw pixel units (0..255), pass ``preprocess=``: it is applied inside the
    differentiated function, so it must be written with ``keras.ops`` or plain arithmetic
    (``(x - 127.0) / 128.0`` is fine; ``np.asarray`` inside it is not).

Guided backpropagation and DeConvNet (their limits)
    The model is cloned (``keras.models.clone_model``, nested models included, weights copied)
    with every ReLU -- ``activation="relu"``/``"relu6"`` in any layer, ``layers.ReLU`` with
    ``negative_slope=0`` and ``threshold=0`` (``max_value`` allowed: ReLU6),
    ``Activation("relu")`` -- replaced by the same function with a custom gradient
    (``keras.ops.custom_gradient``): for the upstream gradient ``g`` at input ``z``, the
    ordinary rule passes ``g * [0 < z (< max)]``, DeConvNet ``g * [g > 0]``, guided
    backpropagation ``g * [0 < z (< max)] * [g > 0]``.  Max pooling keeps its ordinary
    gradient, which is DeConvNet's "switches".  Other activations (sigmoid, swish, leaky ReLU)
    keep their ordinary gradient, so on a swish network (EfficientNet-B0) the result is not
    guided backpropagation -- a model without any ReLU gets a ``ValueError``.  Subclassed models
    and custom layers that ``clone_model`` cannot rebuild from their config are not supported
    (``ValueError``).

Used in: labs/02_conv_arithmetic, labs/10_looking_inside
"""

from cnnlab.interpret.adversarial import fgsm, pgd
from cnnlab.interpret.attribution import (
    effective_receptive_field,
    grad_cam,
    grad_cam_layer,
    occlusion_map,
    overlay,
    saliency_map,
)
from cnnlab.interpret.features import (
    crop_window,
    feature_maps,
    field_window,
    plot_feature_maps,
    plot_filters,
    plot_top_patches,
    top_activating_patches,
    top_k_activations,
)
from cnnlab.interpret.surgery import input_gradient

__all__ = [
    "crop_window",
    "effective_receptive_field",
    "feature_maps",
    "field_window",
    "fgsm",
    "grad_cam",
    "grad_cam_layer",
    "input_gradient",
    "occlusion_map",
    "overlay",
    "pgd",
    "plot_feature_maps",
    "plot_filters",
    "plot_top_patches",
    "saliency_map",
    "top_activating_patches",
    "top_k_activations",
]
