"""Training-step throughput: plain torchvision ResNet-50 vs the MPM network (pool, 6 parts).

Three networks see the same batch size and input size:
  * torchvision ResNet-50 as shipped (last stride 2, one 751-way classifier);
  * the same ResNet-50 with last stride 1, the feature-map geometry MPM (and PCB) use;
  * MPMNet(mask_mode="pool", parts=6): mask pooling in the stem, 6 reducers and classifiers.
The cost of the mask channel and the part head is the ratio to the last-stride-1 network; the
ratio to the stock network adds the 4× larger layer4 map that last stride 1 brings.

    python benchmarks/model_overhead.py [--height 384 --width 128 --batch-size 8 --steps 5]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
import torchvision

from mpm.backbones import set_last_stride_one
from mpm.losses import part_id_loss
from mpm.model import MPMNet

NUM_CLASSES = 751


def plain_step(net: torch.nn.Module) -> Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]:
    def loss(images, masks, labels):
        return F.cross_entropy(net(images), labels)
    return loss


def mpm_step(net: MPMNet) -> Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]:
    def loss(images, masks, labels):
        return part_id_loss(net(images, masks).logits, labels)
    return loss


def images_per_second(net: torch.nn.Module, loss_fn, args, device: torch.device) -> float:
    """Median images/s over ``args.steps`` SGD steps after ``args.warmup`` untimed ones."""
    generator = torch.Generator().manual_seed(0)
    images = torch.randn(args.batch_size, 3, args.height, args.width, generator=generator).to(device)
    masks = (torch.rand(args.batch_size, 1, args.height, args.width, generator=generator) > 0.4).float().to(device)
    labels = torch.randint(0, NUM_CLASSES, (args.batch_size,), generator=generator).to(device)
    net.to(device).train()
    optimizer = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
    use_amp = device.type == "cuda"
    seconds = []
    for step in range(args.warmup + args.steps):
        start = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device.type, enabled=use_amp):
            loss = loss_fn(images, masks, labels)
        loss.backward()
        optimizer.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        if step >= args.warmup:
            seconds.append(time.perf_counter() - start)
    return args.batch_size / statistics.median(seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--height", type=int, default=384)
    parser.add_argument("--width", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    device = torch.device(args.device)
    torch.manual_seed(0)

    stock = torchvision.models.resnet50(weights=None, num_classes=NUM_CLASSES)
    stride_one = torchvision.models.resnet50(weights=None, num_classes=NUM_CLASSES)
    set_last_stride_one(stride_one)
    mpm = MPMNet(NUM_CLASSES, backbone="resnet50", mask_mode="pool", parts=6, weights=None)
    rates = {
        "torchvision resnet50 (stock)": images_per_second(stock, plain_step(stock), args, device),
        "torchvision resnet50, last stride 1": images_per_second(stride_one, plain_step(stride_one), args, device),
        "MPMNet pool, 6 parts": images_per_second(mpm, mpm_step(mpm), args, device),
    }
    print(f"train step, batch {args.batch_size}, input {args.height}x{args.width}, device {device}, "
          f"{torch.get_num_threads()} threads, median of {args.steps} steps")
    for name, rate in rates.items():
        print(f"  {name:<38} {rate:8.2f} images/s")
    mpm_rate = rates["MPMNet pool, 6 parts"]
    print(f"  ratio MPM / resnet50 last stride 1:    {mpm_rate / rates['torchvision resnet50, last stride 1']:.3f}"
          "   (target >= 0.95: mask channel + part head overhead)")
    print(f"  ratio MPM / resnet50 stock:            {mpm_rate / rates['torchvision resnet50 (stock)']:.3f}"
          "   (includes the 4x larger layer4 map of last stride 1)")


if __name__ == "__main__":
    main()
