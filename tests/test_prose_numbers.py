"""Every number a lab's prose quotes is one the lab prints, and a test pins the pair.

Each :class:`Quote` ties words of a lab's markdown (found verbatim, whitespace aside) to a number
the same lab prints (a regular expression over what the graded solution printed, read from the
notebooks the grader executed once per session, ``tests/lab_runs.py``).  The number the prose
states must equal the printed one within ``tolerance`` (in the printed unit): 0 for the
deterministic numbers (parameter counts, a fixed model's probabilities on fixed photos), the
rounding the prose does otherwise ("about 30 times" for a printed 29x).  A :class:`Relation`
pins what a training result teaches (which model wins, what barely moves) within a band, never a
literal.  A library change that moves a number, or an edit of the prose, fails here — not in
front of a student.

Labs whose prose numbers are pinned elsewhere: 02, 03 and 09 in ``tests/test_lab_facts.py``,
06's facts in ``tests/test_facts_lab06.py`` and its ``cpu`` figures in
``tests/lessons/test_headlines.py`` (here: what its ``smoke`` run shows).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable

import nbformat
import pytest

from cnnlab.exercise import LABS
from tests.conftest import ROOT


@dataclass(frozen=True)
class Quote:
    """``prose`` (verbatim words of the lab's markdown) states ``value``; the lab prints it."""

    prose: str
    printed: str  # a regular expression whose first group is the printed number
    value: float
    tolerance: float = 0.0


@dataclass(frozen=True)
class Relation:
    """``prose`` states a relation between printed numbers; ``holds`` checks it."""

    prose: str
    printed: tuple[str, ...]  # one regular expression (first group: a number) per number
    holds: Callable[..., bool]
    says: str  # the relation in words, for the failure message


QUOTES: dict[str, list[Quote | Relation]] = {
    "01": [
        Relation("The loss falls by orders of magnitude",
                 (r"loss ([\d.e+-]+) -> [\d.e+-]+ after \d+ steps; kernel_gradient",
                  r"loss [\d.e+-]+ -> ([\d.e+-]+) after \d+ steps; kernel_gradient"),
                 lambda before, after: after < before / 1e3,
                 "the loss falls by at least three orders of magnitude"),
        Relation("the learned kernel becomes the Sobel kernel it never saw",
                 (r"largest difference from Sobel: ([\d.e+-]+)",),
                 lambda difference: difference < 0.01,
                 "the learned kernel is the Sobel kernel within 0.01"),
        Quote("`Conv2D(32, 3)` on a grayscale image has kernels (3, 3, 1, 32) and 320 parameters",
              r"conv1: kernel \(3, 3, 1, 32\), bias \(32,\), ([\d,]+) parameters", 3 * 3 * 32 + 32),
        Quote("the next `Conv2D(64, 3)` (3, 3, 32, 64) and 18,496",
              r"conv2: kernel \(3, 3, 32, 64\), bias \(64,\), ([\d,]+) parameters",
              3 * 3 * 32 * 64 + 64),
    ],
    "02": [
        Quote("a $3\\times3$ kernel fits in 5 positions per row with stride 1",
              r"7x7 input, 3x3 kernel, stride 1: output (\d+)x", 5),
        Quote("and in 3 with stride 2", r"7x7 input, 3x3 kernel, stride 2: output (\d+)x", 3),
        Quote("\\qquad \\frac{7-3}{3}+1 = 2.33 \\;\\text{(doesn't fit!)}",
              r"\(7 - 3\) / 3 \+ 1 = ([\d.]+) is not an integer", 2.33),
        Quote("(the lecture's 760 example)", r"paper: 32 x 32 x 10, .* = (\d+) parameters", 760),
        Quote("with $64 \\cdot 32 + 32$ parameters",
              r"1x1 CONV, 32 filters: .* with ([\d,]+) parameters", 64 * 32 + 32),
        Quote("two stacked $3\\times3$ layers see a $5\\times5$ patch",
              r"two 3x3 +[\d,]+ weights = 18 K\^2 +receptive field (\d+)", 5),
        Quote("2\\times(3\\times3):\\ 2 \\cdot 9K^2 = 18K^2",
              r"two 3x3 +([\d,]+) weights = 18 K\^2", 18 * 64 * 64),
        Quote("With dilations $1, 2, 4$ three $3\\times3$ layers see $15$ pixels",
              r"ReceptiveField\(size=\((\d+), \d+\), layers=3\)", 15),
        Quote("(each output sees only 9 of 16 inputs)", r"only (\d+) distinct weights", 9),
        Quote("gives $(2-1)\\cdot 2 + 3 = 5$ pixels per axis", r"\noutput size: (\d+)\n", 5),
        Relation("around $10^{-7}$ or below means the formula is right; $10^{-2}$ means a bug",
                 (r"dx: relative error ([\d.e+-]+)", r"dW: relative error ([\d.e+-]+)",
                  r"buggy dW: relative error ([\d.e+-]+)"),
                 lambda dx, dw, buggy: dx <= 1e-7 and dw <= 1e-7 and buggy >= 1e-2,
                 "the right formulas check to 1e-7 or below, the buggy one above 1e-2"),
    ],
    "04": [
        Quote("has about **922 million** parameters",
              r"Dense\(1000\) on 640x480x3: ([\d,]+) parameters", 922e6, 0.5e6),
        Quote("The exact count is 921,601,000",
              r"Dense\(1000\) on 640x480x3: ([\d,]+) parameters", 921_601_000),
        Quote("3.7 GB of float32 weights", r"\(([\d.]+) GB of float32\)", 3.7),
        Quote(r"$(5 \times 5 \times 3 + 1) \times 32$ parameters",
              r"Conv2D\(32, 5\) on 640x480x3: ([\d,]+) parameters", (5 * 5 * 3 + 1) * 32),
        Quote("the lecture's MLP (203,530)", r"mlp: ([\d,]+) parameters", 203_530),
        Quote("and ConvNet (431,754)", r"my_convnet: ([\d,]+) parameters", 431_754),
        Quote("about 95 % of them sit in one place",
              r"its first Dense layer: [\d,]+ \((\d+)% of the parameters\)", 95),
        Relation("The two convolutions together have fewer than 20,000",
                 (r"conv1 +Conv2D +\(None, 24, 24, 32\) +[\d,]+ +([\d,]+)",
                  r"conv2 +Conv2D +\(None, 10, 10, 64\) +[\d,]+ +([\d,]+)"),
                 lambda conv1, conv2: conv1 + conv2 < 20_000,
                 "the two convolutions of the ConvNet hold fewer than 20,000 parameters"),
        Quote("a partial S2→C3 table (1,516 parameters",
              r"= ([\d,]+) parameters\na fully connected C3", 1516),
        Quote("(1,516 parameters instead of 2,416)", r"a fully connected C3 .*: ([\d,]+)", 2416),
        Quote("LeNet-5 has 60,850 parameters", r"Params: (60,850) ", 60_850),
        Relation("LeNet-5 has 60,850 parameters, 7 times fewer than the lecture's ConvNet",
                 (r"my_convnet: ([\d,]+) parameters", r"Params: (60,850) "),
                 lambda convnet, lenet: round(convnet / lenet) == 7,
                 "the ConvNet has 7 times LeNet-5's parameters (rounded)"),
        Relation("its accuracy barely moves",
                 (r"MLP +test accuracy: original pixels ([\d.]+)",
                  r"MLP +test accuracy: original pixels [\d.]+, shuffled pixels ([\d.]+)"),
                 lambda original, shuffled: abs(original - shuffled) < 0.03,
                 "the MLP's accuracy moves by less than 3 points when the pixels are shuffled"),
        Relation("it drops below the MLP",
                 (r"ConvNet +test accuracy: original pixels [\d.]+, shuffled pixels ([\d.]+)",
                  r"MLP +test accuracy: original pixels [\d.]+, shuffled pixels ([\d.]+)",
                  r"ConvNet +test accuracy: original pixels ([\d.]+)"),
                 lambda convnet_shuffled, mlp_shuffled, convnet: (
                     convnet_shuffled < mlp_shuffled and convnet_shuffled < convnet - 0.05),
                 "on shuffled pixels the ConvNet loses over 5 points and ends below the MLP"),
    ],
    "05": [
        Quote("**34,944 parameters**", r"conv_vs_dense \(\w+\): output \(55, 55, 96\), ([\d,]+)",
              34_944),
        Quote("We find $44.9\\times10^9$", r"([\d,]+) parameters \(44.9 x 10\^9\)", 44.9e9, 0.05e9),
        Quote("the slide's $43.7\\times10^9$",
              r"224\*224\*3 inputs x 290,400 outputs = ([\d,]+)", 43.7e9, 0.05e9),
        Quote("$(224-11)/4+1 = 54.25$ positions", r"\(224 - 11\) / 4 \+ 1 = ([\d.]+)", 54.25),
        Quote("$227^2/11^2 \\approx 426$ times fewer weights",
              r"local connectivity x weight sharing = (\d+) x", 426),
        Quote("**15.2 M values, 61 MB per image**",
              r"Keras VGG16 : ([\d,]+) activations", 15.2e6, 0.05e6),
        Quote("61 MB per image** in float32 (122 MB with the backward pass)",
              r"Keras VGG16 : [\d,]+ activations = [\d.]+ MB per image \(([\d.]+) MB with backward",
              122, 0.5),
        Quote("**The parameter line is right:** 138,344,128 weights",
              r"Keras VGG16 : [\d,]+ activations = .*; ([\d,]+) weights", 138_344_128),
        Quote("(138,357,544 with the 13,416 biases)",
              r"with biases ([\d,]+) parameters", 138_357_544),
        Quote("× 4 bytes ≈ 553 MB", r"Keras VGG16 : .* weights = ([\d.]+) MB", 553, 0.5),
        Quote("(×2, 1.1 GB with plain SGD)", r"Keras VGG16 : .*\(SGD (\d+) MB", 1100, 10),
        Quote("Adam's two moment estimates (×4, 2.2 GB)", r"Keras VGG16 : .*Adam (\d+) MB\)",
              2200, 20),
        Quote("AlexNet keeps 6 % of its parameters in the convolutions",
              r"AlexNet +[\d.]+ M parameters: conv +([\d.]+)%", 6, 0.5),
        Quote("which do about 95 % of the multiply-accumulates",
              r"AlexNet +.*MACs: conv +([\d.]+)%", 95, 0.5),
        Quote("VGG16 keeps **89 %** of its parameters in the three dense layers",
              r"VGG16 +[\d.]+ M parameters: conv +[\d.]+%, dense +([\d.]+)%", 89, 0.5),
        Quote("103 M of them in `fc1`", r"VGG16's fc1 alone .*: ([\d,]+) parameters", 103e6, 0.5e6),
        Quote("while its convolutions do 99 % of the compute",
              r"VGG16 +.*MACs: conv +([\d.]+)%", 99, 0.5),
        Quote("(VGG16 89 %, AlexNet 94 %)",
              r"AlexNet +[\d.]+ M parameters: conv +[\d.]+%, dense +([\d.]+)%", 94, 0.5),
        Quote("D 138 M", r"VGG-D \(vgg16 *\): +([\d.]+) M parameters", 138, 0.5),
        Quote("turns into a loss beyond $\\alpha \\approx 5.5$ for the stacked pair",
              r"5x5 -> two 3x3 +: .*a loss beyond alpha = ([\d.]+)", 5.5, 0.1),
        Quote("and $\\alpha \\approx 6.9$ for 1×3/3×1",
              r"3x3 -> 1x3 then 3x1 +: .*a loss beyond alpha = ([\d.]+)", 6.9, 0.1),
        Quote("two 3×3 cost $18 n^2$ against $25 n^2$ for one 5×5, −28 %",
              r"5x5 -> two 3x3 +: alpha = 1 ([+-]\d+) %", -28),
        Quote("(−24 % at α = 2)", r"5x5 -> two 3x3 +: alpha = 1 [+-]\d+ %, alpha = 2 ([+-]\d+) %",
              -24),
        Quote("1×3 + 3×1 instead of 3×3 (−29 %; the lecture rounds it to −30 %)",
              r"3x3 -> 1x3 then 3x1 +: alpha = 1 [+-]\d+ %, alpha = 2 ([+-]\d+) %", -29),
        Relation("With the reductions the module has 2.4 times fewer parameters and MACs",
                 (r"naive_3a +\d+ +([\d,]+)", r"inception_3a +\d+ +([\d,]+)",
                  r"naive_3a +\d+ +[\d,]+ +([\d,]+)", r"inception_3a +\d+ +[\d,]+ +([\d,]+)"),
                 lambda naive_p, reduced_p, naive_m, reduced_m: (
                     round(naive_p / reduced_p, 1) == 2.4 and round(naive_m / reduced_m, 1) == 2.4),
                 "naive 3a has 2.4 times the parameters and the MACs of inception 3a"),
        Quote("gives 256", r"inception_3a +(\d+) ", 256),
        Quote("with biases we count 7.0 M", r"GoogLeNet: ([\d,]+) parameters", 7.0e6, 0.05e6),
        Quote("9 times fewer", r"AlexNet / GoogLeNet = ([\d.]+) x in parameters", 9, 0.15),
        Quote("(18,688 parameters for the first layer", r"\n +1 +64 +96 +([\d,]+)", 18_688),
        Quote("65,408 for the sixth", r"\n +6 +224 +256 +([\d,]+)", 65_408),
        Quote("the block gives $64 + 6 \\cdot 32 = 256$ channels with 252,288",
              r"plain +block: ([\d,]+) parameters", 252_288),
        Quote("fewer than one 3×3 convolution from 256 to 256 channels (589,824 weights)",
              r"one 3x3 convolution from 256 to 256 channels: ([\d,]+) weights", 589_824),
        Quote("(338,304 parameters", r"DenseNet-B block: ([\d,]+) parameters", 338_304),
        Quote("1.04 G MACs", r"DenseNet-B block: [\d,]+ parameters, ([\d.]+) G MACs", 1.04),
        Quote("against 0.78 G)", r"plain +block: [\d,]+ parameters, ([\d.]+) G MACs", 0.78),
        Quote("fewer only from about 234", r"equal at c = ([\d.]+)", 234, 0.5),
        Quote("has 4.37 M parameters plain", r"third block : plain ([\d,]+)", 4.37e6, 0.005e6),
        Quote("and 2.87 M with bottlenecks", r"third block : plain [\d,]+, DenseNet-B ([\d,]+)",
              2.87e6, 0.005e6),
        Quote("separable convolutions ($1/N + 1/K^2$ of the cost, 8–9× cheaper)",
              r"-> ([\d.]+) times cheaper", 8.5, 0.5),
    ],
    "06": [  # what `smoke` shows (the `cpu` figures: tests/lessons/test_headlines.py)
        Quote("In `smoke` (3 epochs)", r"validation accuracy after (\d+) epochs: \d+%", 3),
        Relation("In `smoke` (3 epochs) the network has not learned much yet",
                 (r"validation accuracy after \d+ epochs: (\d+)%",),
                 lambda accuracy: accuracy <= 70,
                 "the texture net is at most 70 % right after smoke's epochs"),
        Relation("(In `smoke`, 3 epochs, neither run has learned much yet.)",
                 (r"-- lecture's augmentation\n(?:.*\n)*?   validation accuracy "
                  r"\(validation_flow: \w+\) (\d+)%",
                  r"-- rescale only\n(?:.*\n)*?   validation accuracy \(validation_flow: \w+\) "
                  r"(\d+)%"),
                 lambda augmented, rescaled: max(augmented, rescaled) <= 75,
                 "both folder runs are at most 75 % right after smoke's epochs"),
        Relation("In `smoke` (300 digits, 6 epochs) the runs are too short for that: augmented "
                 "images are harder to fit, so the calibrated curves start lower",
                 (r"no augmentation: train accuracy ([\d.]+)",
                  r"calibrated: train accuracy ([\d.]+)",
                  r"no augmentation: train accuracy [\d.]+ .*validation ([\d.]+),",
                  r"calibrated: train accuracy [\d.]+ .*validation ([\d.]+),"),
                 lambda plain_train, calibrated_train, plain_val, calibrated_val:
                     calibrated_train < plain_train and calibrated_val < plain_val,
                 "in smoke the calibrated run is behind the plain one, in training and in "
                 "validation accuracy"),
        Quote("In `smoke` (300 digits, 6 epochs)", r"'train_digits': (\d+)", 300),
        Quote("In `smoke` (300 digits, 6 epochs)", r"'epochs': (\d+)", 6),
    ],
    "07": [
        Quote("Its table gives 549,156 parameters without BN",
              r"without BN: Keras ([\d,]+)", 549_156),
        Quote("553,476 with BN", r"with BN: Keras ([\d,]+)", 553_476),
        Quote("(550,596 of them trainable)",
              r"with BN: Keras [\d,]+ \(([\d,]+) trainable", 550_596),
        Quote("even plain 3x3 convolutions instead of the 1x3/3x1 pairs give 1.3 M",
              r"with plain 3x3 convolutions instead: ([\d,]+)", 1.3e6, 0.05e6),
        Quote("its moving mean is only 1 % of the way from 0 to the batch mean",
              r"moving mean after one training call \[([\d.]+) ", 0.01 * 4.684, 0.001),
        Quote("With Keras's momentum 0.99 the averages need about 300 steps",
              r"momentum 0.99: (\d+) steps to get within 5 %", 300, 5),
        Quote("(printed before its training: about 1.7 for the initial weights in `smoke`",
              r"L2 penalty of the initial weights: ([\d.]+)", 1.7, 0.05),
        Relation("The plain net's loss stays at $\\ln 10$",
                 (r"\(chance: ln 10 = ([\d.]+)\): plain", r"\): plain ([\d.]+),"),
                 lambda chance, plain: abs(plain - chance) < 0.05,
                 "the trained plain 20-layer net ends within 0.05 of ln 10"),
        Relation("The residual net starts far above chance",
                 (r"\(chance: ln 10 = ([\d.]+)\): plain", r", residual ([\d.]+),"),
                 lambda chance, residual: residual > chance,
                 "the residual net (no BatchNorm) is still above ln 10 at the end"),
        Relation("BatchNorm alone is enough to make the 20-layer sigmoid net learn, and so does "
                 "residual + BatchNorm",
                 (r"\(chance: ln 10 = ([\d.]+)\): plain", r", BatchNorm ([\d.]+),",
                  r", residual \+ BatchNorm ([\d.]+)"),
                 lambda chance, bn, both: bn < chance - 0.1 and both < chance - 0.1,
                 "both BatchNorm nets end at least 0.1 below ln 10"),
        Relation("Without BatchNorm only scales near $0.1$",
                 (r"without BatchNorm: the loss falls below ln 10 - 0.1 at (\d+) of",
                  r"without BatchNorm +([\d.e+]+) +[\d.e+]+ +[\d.e+]+ +[\d.e+]+ +[\d.e+]+\n",
                  r"without BatchNorm +[\d.e+]+ +[\d.e+]+ +[\d.e+]+ +([\d.e+]+) +[\d.e+]+\n",
                  r"without BatchNorm +[\d.e+]+ +[\d.e+]+ +[\d.e+]+ +[\d.e+]+ +([\d.e+]+)\n"),
                 lambda learned, smallest, near_right, largest: (
                     learned <= 1 and near_right < smallest and largest > 10),
                 "without BatchNorm at most one scale learns, 0.1 does better than 1e-4, and "
                 "scale 1 explodes (loss over 10)"),
        Relation("With BatchNorm the net learns from small scales as well as from the right one",
                 (r"with BatchNorm: the loss falls below ln 10 - 0.1 at (\d+) of",),
                 lambda learned: learned >= 3,
                 "with BatchNorm the loss falls at three scales or more"),
    ],
    "08": [
        Relation("(Egyptian cat, tiger cat, tabby: about 90 % together)",
                 (r"chelsea: Egyptian cat ([\d.]+)%", r"chelsea: .*\| tiger cat ([\d.]+)%",
                  r"chelsea: .*\| tabby ([\d.]+)%"),
                 lambda *cats: abs(sum(cats) - 90) <= 2.5,
                 "chelsea's three cat classes hold 90 % within 2.5 points"),
        Quote("The coffee is an espresso at 94 %", r"coffee: espresso ([\d.]+)%", 94, 0.5),
        Quote("chelsea becomes a *pillow*, 43 %", r"forgot to preprocess +pillow (\d+)%", 43),
        Quote("get the **same** answer (*nematode*, 2 %)",
              r"scaled twice \(0\.\.1 in\) +nematode (\d+)% +nematode \1% +nematode \1% +nematode",
              2),
        Quote("the espresso becomes a *loudspeaker* (about half of the probability)",
              r"caffe mode \(yours\) +\w+ \d+% +loudspeaker (\d+)%", 50, 5),
        Quote("chelsea a *tabby* (over three quarters)",
              r"caffe mode \(yours\) +tabby (\d+)%", 77, 2),
        Quote("the rocket turns into a *drilling platform*",
              r"BGR instead of RGB +.* drilling platform (\d+)%", 37),
        Quote("Keras Applications table for ResNet50 (74.9 %)",
              r"\nResNet50 +[\d,]+ +\d+ MB +[\d.]+ G +([\d.]+)%", 74.9),
        Quote("and VGG16 (71.3 %)", r"\nVGG16 +[\d,]+ +\d+ MB +[\d.]+ G +([\d.]+)%", 71.3),
        Quote("release for Lite0 (75.1 %)",
              r"\nEfficientNet-Lite0 +[\d,]+ +\d+ MB +[\d.]+ G +([\d.]+)%", 75.1),
        Quote("Lite0 matches ResNet50's accuracy with a fifth of its parameters",
              r"ResNet50 / Lite0: ([\d.]+)x", 5, 0.6),
        Quote("and a tenth of its arithmetic", r"ResNet50 / Lite0: [\d.]+x and ([\d.]+)x", 10, 0.5),
        Quote("VGG16 costs about 30 times Lite0's parameters",
              r"VGG16 / Lite0: (\d+)x the parameters", 30, 1.5),
        Quote("and 40 times its MACs", r"VGG16 / Lite0: \d+x the parameters, (\d+)x the MACs", 40),
        Relation("for 4 points less",
                 (r"\nEfficientNet-Lite0 +[\d,]+ +\d+ MB +[\d.]+ G +([\d.]+)%",
                  r"\nVGG16 +[\d,]+ +\d+ MB +[\d.]+ G +([\d.]+)%"),
                 lambda lite0, vgg16: round(lite0 - vgg16) == 4,
                 "VGG16's reported top-1 is 4 points (rounded) below Lite0's"),
        Quote("The head is a quarter of Lite0's parameters",
              r"1,281,000 parameters \((\d+)% of the model\)", 25, 2.5),
        Relation("almost none of its arithmetic",
                 (r"but only ([\d.]+)% of its MACs",), lambda share: share < 1,
                 "the head does under 1 % of Lite0's MACs"),
        Quote("each image becomes a vector of 1280 numbers",
              r"embeddings: train \(\d+, (\d+)\)", 1280),
        Quote("EfficientNet-Lite0 has 4.7 M parameters",
              r"\nEfficientNet-Lite0 +([\d,]+)", 4.7e6, 0.05e6),
        Quote("and 0.39 G MACs per image",
              r"\nEfficientNet-Lite0 +[\d,]+ +\d+ MB +([\d.]+) G", 0.39),
        Quote("ResNet50 25.6 M", r"\nResNet50 +([\d,]+)", 25.6e6, 0.05e6),
        Quote("and 3.9 G", r"\nResNet50 +[\d,]+ +\d+ MB +([\d.]+) G", 3.9, 0.05),
        Quote("VGG16 138 M", r"\nVGG16 +([\d,]+)", 138e6, 0.5e6),
        Quote("and 15.5 G", r"\nVGG16 +[\d,]+ +\d+ MB +([\d.]+) G", 15.5, 0.05),
        Relation("the nearest neighbour is almost always the same texture",
                 (r"Lite0 embeddings (\d+)%",), lambda accuracy: accuracy >= 90,
                 "1-NN on the embeddings is right at least 90 % of the time"),
        Relation("The raw pixels are no better than chance",
                 (r"1-NN test accuracy \(\d+ patches, chance (\d+)%\)", r"raw pixels (\d+)%"),
                 lambda chance, pixels: pixels <= chance + 15,
                 "1-NN on raw pixels is within 15 points of chance"),
    ],
    "10": [
        Quote("is a real ImageNet classifier: 4.7 M parameters",
              r"EfficientNet-Lite0: ([\d.]+) M parameters", 4.7),
        Quote("4.7 M parameters, 1000 classes", r"EfficientNet-Lite0: [\d.]+ M parameters, (\d+) "
              r"classes", 1000),
        Quote("Chelsea the cat comes out as *Egyptian cat* 40 %",
              r"chelsea +Egyptian cat \(285\) ([\d.]+)", 0.40, 0.005),
        Quote("*tiger cat* 33 %", r"chelsea +.*; tiger cat \(282\) ([\d.]+)", 0.33, 0.005),
        Quote("*tabby* 17 %", r"chelsea +.*; tabby \(281\) ([\d.]+)", 0.17, 0.0051),
        Quote("(25 per map for the `smoke` squares", r"5 x 5 = (\d+) occluded copies", 25),
        Quote("$2 \\times 28 \\times 28 = 1{,}568$ forward passes",
              r"finite differences \(([\d,]+) forward passes\)", 1568),
        Quote("($Z = h \\times w = 49$ spatial positions)", r"Z = h \* w = (\d+);", 49),
        Quote("chelsea to *tiger cat* with a quarter of an intensity level",
              r"smallest epsilon tried that flips the top class: ([\d.]+) intensity levels", 0.25),
        Quote("a targeted iterative attack makes her a *macaw* (98 %)",
              r"p\(macaw\) = ([\d.]+)", 0.98, 0.005),
        Quote("with 2 levels", r"steps of \d+ levels, epsilon = (\d+): p\(macaw\)", 2),
        Quote("47 tiles of 12 real photos", r"(\d+) tiles of 224x224 from \d+ photos", 47),
        Quote("47 tiles of 12 real photos", r"\d+ tiles of 224x224 from (\d+) photos", 12),
        Quote("a unit sees a 67x67-pixel window",
              r"block3b_add: maps .*, receptive field (\d+)x\d+ pixels", 67),
        Quote("and its neighbour the window 8 pixels further",
              r"block3b_add: maps .*, jump (\d+)", 8),
        Quote("28x28 units in each of 40", r"block3b_add: maps \((\d+), \d+, \d+\)", 28),
        Quote("28x28 units in each of 40", r"block3b_add: maps \(\d+, \d+, (\d+)\)", 40),
    ],
    "11": [
        Quote("It has 673 parameters", r"Params: ([\d,]+) \(trainable 673", 673),
        Relation("the logo from the windows shows the 8 planted bases (tall letters, about the "
                 "planted 1.5 bits each)",
                 (r"information over the motif: ([\d.]+) bits per base from the windows, "
                  r"([\d.]+) planted",),
                 lambda windows: abs(windows - 1.5) <= 0.15,
                 "the windows' logo holds 1.5 bits per motif base within 0.15"),
        Quote("$-7.5$ means the field of output 0 spans steps $-15 \\dots 0$",
              r"causal_d8 +16 +1 +(-[\d.]+)", -7.5),
        Quote("with kernel 2, each layer adds one step of context, so 16 steps need 15 layers",
              r"without dilation: 4 layers \d+, (\d+) layers 16", 15),
        Quote("see $1 + \\sum (k - 1)\\,d = 16$ steps with 4",
              r"receptive field: arithmetic.receptive_field (\d+), the formula", 16),
        Quote("An impulse at step 30 must light up outputs 30 to 45",
              r"impulse at t = 30: 30 \.\. (\d+)", 45),
        Quote("16 steps, none before 30 (causal)",
              r"impulse at t = 30: 30 \.\. \d+ \((\d+) steps\)", 16),
        Quote("the noise floor $0.1^2 = 0.01$", r"noise floor ([\d.]+)", 0.01),
        Quote("The receptive field of one output pixel is 18x18",
              r"per_pixel +Conv2D +\(None, 32, 32, 4\) +[\d,]+ +\d+ +\d+ +[\d,]+ +(\d+)",
              18),
        Quote("3x3 convolutions with dilations 1, 2, 4 see $1 + 2\\,(1 + 2 + 4) = 15$ pixels",
              r"dilated_4 +(\d+)x\d+", 15),
        Relation("It pays for this with about 7 times the multiply-accumulates",
                 (r"\nfcn +[\d,]+ parameters, +([\d.]+) M MACs",
                  r"\ndilated_fcn +[\d,]+ parameters, +([\d.]+) M MACs"),
                 lambda fcn, dilated: round(dilated / fcn) == 7,
                 "the dilated network does about 7 times the FCN's MACs"),
    ],
}


def _words(text: str) -> str:
    return " ".join(text.split())


def _markdown(lab: str) -> str:
    nb = nbformat.read(ROOT / "solutions" / f"{LABS[lab]}.ipynb", as_version=4)
    return _words("\n".join(c.source for c in nb.cells if c.cell_type == "markdown"))


def _number(pattern: str, printed: str, lab: str) -> float:
    found = re.search(pattern, printed)
    assert found, f"lab {lab} no longer prints /{pattern}/"
    return float(found.group(1).replace(",", ""))


@pytest.fixture(scope="module", params=sorted(QUOTES))
def lab(request):
    return request.param


def test_every_quote_is_in_the_prose_of_its_lab(lab):
    markdown = _markdown(lab)
    missing = [q.prose for q in QUOTES[lab] if _words(q.prose) not in markdown]
    assert not missing, f"lab {lab}: the prose no longer says {missing} (update QUOTES with it)"


@pytest.mark.slow
def test_the_numbers_the_prose_quotes_are_the_ones_the_lab_prints(lab, lab_run):
    printed = lab_run(lab).printed()
    wrong = []
    for quote in QUOTES[lab]:
        if isinstance(quote, Quote):
            value = _number(quote.printed, printed, lab)
            if abs(value - quote.value) > quote.tolerance:
                wrong.append(f"{quote.prose!r} says {quote.value:g}, the lab prints {value:g}")
        else:
            values = [_number(pattern, printed, lab) for pattern in quote.printed]
            if not quote.holds(*values):
                wrong.append(f"{quote.prose!r}: expected {quote.says}, the lab prints {values}")
    assert not wrong, f"lab {lab}:\n" + "\n".join(wrong)


def test_a_quote_fails_when_the_printed_number_moves():
    # the check itself: a moved number or a broken relation is caught
    quote = QUOTES["08"][1]
    assert abs(_number(quote.printed, "coffee: espresso 85.0% | cup", "08") - quote.value) > 0.5
    relation = QUOTES["04"][-1]
    assert not relation.holds(0.90, 0.898, 0.950)
