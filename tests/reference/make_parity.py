#!/usr/bin/python3
"""Write a parity "tensor bundle" (see bundle.py) for one Gated-SwinRMT configuration.

Usage (from the repository root; always Debian's /usr/bin/python3, which has torch):
  /usr/bin/python3 tests/reference/make_parity.py --variant swat --preset nano --classes 10 \
      --img-size 32 --batch 2 --seed 0 --out /tmp/bundle [--window 7] [--no-rope] \
      [--gate elementwise|headwise|none] [--swat-norm row|none]

Bundle contents:
  param/<key>        every state_dict entry (perturbed weights, pre-forward BN statistics)
  input              (B, 3, S, S) float32, N(0, 1)
  labels             (B,) int64 in [0, classes)
  logits_eval        model.eval() forward, (B, classes)
  logits_train       model.train() forward of a deep copy (drop path 0), (B, classes)
  loss_train         mean cross-entropy of logits_train vs labels, shape []
  after_train/<key>  the copy's running_mean / running_var / num_batches_tracked after that forward
  grad/<name>        d loss_train / d parameter, for every trainable parameter (of the copy)

Note: in train mode BatchNorm needs more than one value per channel, so a batch of 1 whose maps reach
1 x 1 (e.g. 32 px: stage-2 downsample and head BatchNorm) fails with a torch ValueError; use --batch >= 2.
"""

import argparse
import copy
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bundle import write_bundle  # noqa: E402
from gsrmt_ref import GatedSwinRMT, PRESETS, VARIANTS, GATES, SWAT_NORMS  # noqa: E402


def perturb(model, gen):
    """Perturb every weight and BN statistic so that nothing is trivially zero or one."""
    with torch.no_grad():
        for name, mod in model.named_modules():
            if isinstance(mod, nn.BatchNorm2d):
                mod.weight.copy_(torch.rand(mod.weight.shape, generator=gen) + 0.5)  # U(0.5, 1.5)
                mod.bias.copy_(torch.randn(mod.bias.shape, generator=gen) * 0.1)
                mod.running_mean.copy_(torch.randn(mod.running_mean.shape, generator=gen) * 0.1)
                mod.running_var.copy_(torch.rand(mod.running_var.shape, generator=gen) + 0.5)
                mod.num_batches_tracked.fill_(int(torch.randint(1, 1000, (1,), generator=gen)))
            elif isinstance(mod, nn.LayerNorm):
                mod.weight.copy_(torch.rand(mod.weight.shape, generator=gen) + 0.5)  # U(0.5, 1.5)
                mod.bias.copy_(torch.randn(mod.bias.shape, generator=gen) * 0.1)
            elif isinstance(mod, nn.Linear):
                # weights keep their trunc-normal init; zero-initialised biases get small noise
                mod.bias.copy_(torch.randn(mod.bias.shape, generator=gen) * 0.02)
        for name, p in model.named_parameters():
            if name.endswith(".ls1") or name.endswith(".ls2"):
                p.copy_(torch.rand(p.shape, generator=gen) + 0.5)  # U(0.5, 1.5)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--variant", required=True, choices=VARIANTS)
    ap.add_argument("--preset", required=True, choices=sorted(PRESETS))
    ap.add_argument("--classes", type=int, required=True)
    ap.add_argument("--img-size", type=int, required=True)
    ap.add_argument("--batch", type=int, required=True)
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--out", required=True, help="output directory")
    ap.add_argument("--window", type=int, default=7)
    ap.add_argument("--no-rope", action="store_true")
    ap.add_argument("--gate", default="elementwise", choices=GATES)
    ap.add_argument("--swat-norm", default="row", choices=SWAT_NORMS)
    args = ap.parse_args(argv)

    torch.manual_seed(args.seed)
    model = GatedSwinRMT(variant=args.variant, preset=args.preset, num_classes=args.classes,
                         window=args.window, rope=not args.no_rope, gate=args.gate,
                         swat_norm=args.swat_norm, drop_path=0.0)
    gen = torch.Generator().manual_seed(args.seed + 1)
    perturb(model, gen)
    x = torch.randn(args.batch, 3, args.img_size, args.img_size, generator=gen)
    labels = torch.randint(0, args.classes, (args.batch,), generator=gen, dtype=torch.int64)

    tensors = []
    for k, v in model.state_dict().items():
        tensors.append(("param/" + k, v.detach().clone().numpy()))
    tensors.append(("input", x.numpy()))
    tensors.append(("labels", labels.numpy()))

    # Eval forward on the saved weights.
    model.eval()
    with torch.no_grad():
        logits_eval = model(x)
    tensors.append(("logits_eval", logits_eval.numpy()))

    # Train forward + backward on a deep copy (BN stats of the saved weights stay pre-forward).
    train_model = copy.deepcopy(model)
    train_model.train()
    logits_train = train_model(x)
    loss = F.cross_entropy(logits_train, labels)
    loss.backward()
    tensors.append(("logits_train", logits_train.detach().numpy()))
    tensors.append(("loss_train", loss.detach().reshape(()).numpy()))
    for k, v in train_model.state_dict().items():
        if k.endswith("running_mean") or k.endswith("running_var") or k.endswith("num_batches_tracked"):
            tensors.append(("after_train/" + k, v.detach().clone().numpy()))
    for name, p in train_model.named_parameters():
        if p.grad is None:
            raise RuntimeError("parameter %s received no gradient" % name)
        tensors.append(("grad/" + name, p.grad.detach().numpy()))

    meta = {"variant": args.variant, "preset": args.preset, "classes": args.classes,
            "img_size": args.img_size, "batch": args.batch, "window": args.window,
            "rope": not args.no_rope, "gate": args.gate, "swat_norm": args.swat_norm}
    write_bundle(args.out, tensors, meta)
    print("wrote %d tensors to %s (loss_train %.6f)" % (len(tensors), args.out, loss.item()))


if __name__ == "__main__":
    main()
