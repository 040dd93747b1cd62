"""A short training run of the OpenPose-style PAF model on the synthetic multi-person scenes, then OKS AP on
synthetic-val (proof that the PAF encode, loss and grouping decode agree; issue 16 asks for AP > 0.2).

    .venv/bin/python benchmarks/train_paf.py [--epochs 8] [--input 192] [--images 1500] [--val synthetic-val]
        [--threads 1] [--out paf.pt]

openpose-mnv2s starts from the default top-down model's MobileNetV2 x0.5 trunk (simplebaseline-mnv2s-edge; same
``features.*`` names, which are all the trunk this model keeps) and is trained with the ``edgepose train`` loop
(AdamW, warm-up + cosine) on the PAF head's targets and loss. Evaluation runs the PyTorch model through the PAF
head's host decode (``edgepose eval CKPT --data synthetic-val`` gives the same number).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT))
from common import machine, table, today  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--input", type=int, default=192, help="square input side (multiple of 32)")
    p.add_argument("--images", type=int, default=1500, help="synthetic training scenes")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--val", default="synthetic-val")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--out", default=None, help="checkpoint path (default: a temporary file)")
    args = p.parse_args(argv)

    import torch

    from edgepose.data.sources import resolve_dataset
    from edgepose.eval.evaluate import evaluate
    from edgepose.heads import get_head
    from edgepose.models import create
    from edgepose.models.checkpoint import load_backbone_from
    from edgepose.runtimes.torch import TorchRuntime
    from edgepose.train.loop import TrainConfig, train
    from edgepose.weights import default_checkpoint

    torch.manual_seed(0)
    model = create("openpose-mnv2s", input_size=(args.input, args.input))
    n = load_backbone_from(model, default_checkpoint("simplebaseline-mnv2s-edge"))
    print(f"trunk: {n} tensors from simplebaseline-mnv2s-edge", flush=True)
    coco = resolve_dataset(f"synthetic:{args.images}", "multi", progress=False)
    data = get_head("paf").train_dataset(coco, model.edgepose_meta, train=True, seed=0, flip_prob=0.0)
    cfg = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, threads=args.threads,
                      workers=args.workers, progress=False)
    out = args.out or str(Path(__import__("tempfile").mkdtemp()) / "openpose-mnv2s.pt")
    hist = train(model, data, cfg, out=out, log=None)
    print(f"trained in {hist['seconds']:.0f} s; loss per epoch {[round(v, 2) for v in hist['loss']]}", flush=True)
    val = resolve_dataset(args.val, "multi", split="val", progress=False)
    start = time.perf_counter()
    with TorchRuntime(model.eval(), threads=args.threads) as rt:
        stats = evaluate(rt, val, progress=False)
    rows = [["openpose-mnv2s", f"{args.input}x{args.input}", args.images, args.epochs, f"{hist['seconds']:.0f}",
             args.val, f"{stats['AP']:.3f}", f"{stats['AP50']:.3f}", f"{stats['AR']:.3f}"]]
    print(f"\n{today()}, {machine()}, {args.threads} thread(s); eval {time.perf_counter() - start:.0f} s; "
          f"checkpoint {out}\n")
    print(table(["model", "input", "scenes", "epochs", "train s", "val", "AP", "AP50", "AR"], rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
