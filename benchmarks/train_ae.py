"""A short HigherHRNet (associative embedding) training run on the synthetic multi-person scenes, then OKS AP on
synthetic-val: proof that the AE encode, loss and grouping decode agree.

    .venv/bin/python benchmarks/train_ae.py --epochs 6 --input-size 128 --out /tmp/ae.pt

Prints the training time, the loss per epoch and the AP (host decode through the PyTorch runtime).

Measured 2026-12-04 on the 2-core build machine shared with two other jobs (load 6-9), one torch thread, from
scratch (no pretrained trunk), higherhrnet-w16s at 128x128, 3000 synthetic scenes, batch 16:
4 epochs lr 2e-3 (1712 s) → AP 0.122; + 3 epochs --lr 1e-3 (690 s) → 0.181; + 3 epochs --lr 5e-4 (497 s) →
0.198 on synthetic-val:100 (0.192 AP, 0.535 AP50 on all 200 synthetic-val scenes); + 2 epochs --lr 2.5e-4 → 0.195.
10 epochs, 48 min: the target AP > 0.2 is not reached then. 2026-12-05, the cores otherwise idle, two threads:
+ 3 epochs --lr 5e-4 --seed 1 (269 s) from the 10-epoch checkpoint → **AP 0.2115** (AP50 0.558, AR 0.317) on all 200
synthetic-val scenes: AP > 0.2 after 13 epochs, 53 min of training in all.
"""

from __future__ import annotations

import argparse
import json
import time


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="higherhrnet-w16s")
    p.add_argument("--input-size", type=int, default=128, help="square input side (multiple of 32)")
    p.add_argument("--data", default="synthetic")
    p.add_argument("--val", default="synthetic-val:100")
    p.add_argument("--epochs", type=int, default=6)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0,
                   help="sample order and augmentation (a continued run may take another)")
    p.add_argument("--weights", default=None, help="checkpoint to continue from")
    p.add_argument("--out", required=True)
    args = p.parse_args()

    import torch

    from edgepose.data.sources import resolve_dataset
    from edgepose.eval.evaluate import evaluate
    from edgepose.heads import get_head
    from edgepose.models import create
    from edgepose.models.checkpoint import load_checkpoint
    from edgepose.runtimes.spec import ModelSpec
    from edgepose.runtimes.torch import TorchRuntime
    from edgepose.train.loop import TrainConfig, train

    torch.set_num_threads(args.threads)
    size = (args.input_size, args.input_size)
    model = load_checkpoint(args.weights) if args.weights else create(args.model, input_size=size)
    meta = model.edgepose_meta
    meta.config.pop("checkpoint_info", None)  # not a create() argument: the new checkpoint must rebuild the model
    coco = resolve_dataset(args.data, "multi", progress=False)
    data = get_head(meta.kind).train_dataset(coco, meta, train=True, seed=0, flip_prob=0.0)
    cfg = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, threads=args.threads, workers=0,
                      progress=False, seed=args.seed)
    start = time.perf_counter()
    hist = train(model, data, cfg, out=args.out, log=None)
    seconds = time.perf_counter() - start
    val = resolve_dataset(args.val, "multi", split="val", progress=False)
    with TorchRuntime(model.eval(), ModelSpec.from_meta(meta)) as rt:
        stats = evaluate(rt, val, progress=False)
    print(json.dumps({"model": meta.name, "input_size": list(meta.input_size), "images": len(data),
                      "epochs": args.epochs, "train_seconds": round(seconds, 1),
                      "loss": [round(v, 5) for v in hist["loss"]], "val": args.val,
                      "AP": round(stats["AP"], 4), "AP50": round(stats["AP50"], 4), "AR": round(stats["AR"], 4)}))


if __name__ == "__main__":
    main()
