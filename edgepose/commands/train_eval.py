"""``edgepose train`` and ``edgepose eval``."""

from __future__ import annotations

import json
from pathlib import Path

from edgepose.commands.base import command
from edgepose.errors import ConfigError, DataError
from edgepose.utils.fs import check_output_file
from edgepose.utils.options import check_threads

DATA_HELP = ("synthetic[:N] | synthetic-val[:N] | coco:ANN.json[:IMG_DIR] | ANN.json "
             "(synthetic data is generated from a fixed seed and cached in $EDGEPOSE_CACHE); eval also takes "
             "posetrack:ANN.json|ANN_DIR[:ROOT] (PoseTrack tracking: MOTA, ID switches)")


def _train_args(p) -> None:
    p.add_argument("--model", required=True, help="registered model name (see `edgepose models`)")
    p.add_argument("--data", default="synthetic", help=DATA_HELP)
    p.add_argument("--epochs", type=int, default=10, help="passes over the training set")
    p.add_argument("--batch-size", type=int, default=32, help="images per step")
    p.add_argument("--lr", type=float, default=1e-3, help="peak AdamW learning rate (cosine decay)")
    p.add_argument("--seed", type=int, default=0, help="seed for weights init, shuffling and augmentation")
    p.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    p.add_argument("--workers", type=int, default=1, help="data-loading worker processes")
    p.add_argument("--weights", default=None, help="initial checkpoint to fine-tune from")
    p.add_argument("--init-backbone", default=None, metavar="CKPT",
                   help="copy matching backbone weights from another checkpoint (e.g. a trained top-down model)")
    from edgepose.commands.student import add_trunk_args

    add_trunk_args(p)
    p.add_argument("--flip-prob", type=float, default=None,
                   help="horizontal-flip augmentation probability (default: 0.5 for real data, 0 for synthetic data, "
                        "whose figures mark the left side by shading, a cue a mirror image would contradict)")
    p.add_argument("--out", required=True, help="checkpoint path (rewritten atomically every epoch)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


@command("train", "train a registered model on synthetic or COCO-format data")(_train_args)
def run_train(args) -> int:
    from edgepose.commands.student import prepare_trunk
    from edgepose.data.sources import resolve_dataset
    from edgepose.heads import check_trainable, get_head
    from edgepose.models import create
    from edgepose.train.loop import TrainConfig, train

    cfg = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, seed=args.seed,
                      threads=args.threads, workers=args.workers, progress=not args.no_progress)
    cfg.validate()  # before any data is generated
    check_output_file(args.out, "--out", creates_folders=True)
    model = create(args.model, weights=args.weights,
                   **({"input_size": tuple(args.input_size)} if args.input_size else {}))
    check_trainable(model)  # before any data is generated
    prepare_trunk(model, args)
    if args.init_backbone:
        from edgepose.models.checkpoint import load_backbone_from

        n = load_backbone_from(model, args.init_backbone)
        print(f"backbone: {n} tensors from {args.init_backbone}")
    meta = model.edgepose_meta
    coco = resolve_dataset(args.data, get_head(meta.kind).sample_mode, progress=not args.no_progress)
    missing = [coco.image_path(i) for i in coco.image_ids if not coco.image_path(i).is_file()]
    if missing:  # before any worker starts: a missing image mid-epoch came back as a worker's traceback
        raise DataError(f"{len(missing)} of {len(coco.image_ids)} images of {args.data} are missing (e.g. "
                        f"{missing[0]}); expected every image the annotations list")
    flip = args.flip_prob if args.flip_prob is not None else (0.0 if args.data.startswith("synthetic") else 0.5)
    if not 0.0 <= flip <= 1.0:
        raise ConfigError(f"--flip-prob must be in [0, 1], got {flip}")
    dataset = get_head(meta.kind).train_dataset(coco, meta, train=True, seed=args.seed, flip_prob=flip)
    hist = train(model, dataset, cfg, out=args.out)
    print(f"trained {meta.name} on {len(dataset)} samples for {cfg.epochs} epochs in {hist['seconds']:.0f} s; "
          f"final loss {hist['loss'][-1]:.4g}; checkpoint: {args.out}")
    return 0


def _eval_args(p) -> None:
    p.add_argument("model", metavar="MODEL_OR_BUNDLE",
                   help="a registered model name (uses its default weights), an edgepose checkpoint file, or a "
                        "bundle folder (from `edgepose export` / `edgepose import`: scores the deployed model, "
                        "INT8 included, on this machine's backend)")
    p.add_argument("--data", default="synthetic-val", help=DATA_HELP)
    p.add_argument("--weights", default=None, help="'default', or a state_dict checkpoint for a model name")
    p.add_argument("--flip-test", action="store_true",
                   help="average with the horizontally flipped input (top-down; assumes left/right look "
                        "alike in a mirror — not true of the synthetic-trained defaults, which read the left side "
                        "from shading: there it lowers AP)")
    p.add_argument("--max-images", type=int, default=None, help="evaluate on the first N images only")
    p.add_argument("--detections", default=None, metavar="DET_JSON",
                   help="top-down: person boxes from a COCO detection results file (image_id, bbox x,y,w,h, "
                        "score; e.g. coco-mini's test_coco_det_AP_H_56.json) instead of the ground-truth boxes: "
                        "the usual COCO protocol, AP then includes the detector's misses")
    p.add_argument("--det-min-score", type=float, default=0.0,
                   help="keep detections scoring at least this (0..1; default 0: every box, as COCO AP ranks "
                        "people by score)")
    p.add_argument("--threads", type=int, default=None,
                   help="inference threads (a bundle: default its --device profile's, else every core the "
                        "backend may use; a PyTorch model: torch's default)")
    p.add_argument("--json", action="store_true", help="print the metrics as JSON")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


@command("eval", "evaluate a model, checkpoint or bundle: COCO OKS AP/AR (pycocotools)")(_eval_args)
def run_eval(args) -> int:
    from edgepose.data.sources import resolve_dataset
    from edgepose.eval.evaluate import evaluate

    if args.max_images is not None and args.max_images < 1:
        raise ConfigError(f"--max-images must be >= 1, got {args.max_images}")
    check_threads(args.threads, "--threads")
    if not 0.0 <= args.det_min_score <= 1.0:
        raise ConfigError(f"--det-min-score must be in [0, 1], got {args.det_min_score}")
    if args.det_min_score and args.detections is None:
        raise ConfigError(f"--det-min-score {args.det_min_score:g} given without --detections; expected both")
    if args.data.startswith("posetrack:"):
        return _eval_posetrack(args)
    rt, name = _eval_runtime(args)
    with rt:
        if args.flip_test and not rt.spec.head.flip_test:
            raise ConfigError(f"--flip-test needs a top-down model (heatmap or regression); {name} is "
                              f"{rt.spec.kind!r}")
        if args.detections is not None and rt.spec.bottom_up:
            raise ConfigError(f"--detections needs a top-down model (heatmap or regression); {name} is bottom-up "
                              f"({rt.spec.kind!r}) and finds the people itself")
        # "synthetic[:N]" is the training set (to compare train and val AP), "synthetic-val[:N]" the held-out one
        coco = resolve_dataset(args.data, rt.spec.head.sample_mode, split="train", progress=not args.no_progress,
                               limit=args.max_images)
        dets = _detections_for(args, coco)
        stats = evaluate(rt, coco, detections=dets, flip_test=args.flip_test, max_images=args.max_images,
                         progress=not args.no_progress)
    if args.json:
        print(json.dumps(stats, indent=2))
    else:
        boxes = f", {stats['num_results']} detected people" if dets is not None else ""
        print(f"{name} on {args.data} ({stats['num_images']} images{boxes}): "
              f"AP {stats['AP']:.3f}  AP50 {stats['AP50']:.3f}  AP75 {stats['AP75']:.3f}  AR {stats['AR']:.3f}")
    return 0


def _eval_posetrack(args) -> int:
    """``--data posetrack:...``: tracking metrics (MOTA, ID switches; :mod:`edgepose.eval.posetrack`)."""
    from edgepose.data.coco import load_detections
    from edgepose.eval.posetrack import evaluate_tracking, parse_posetrack_spec
    from edgepose.utils.lazy import check_installed

    parse_posetrack_spec(args.data)  # a bad path, or a missing package, fails before a model is loaded
    check_installed("motmetrics", "--data posetrack:... (MOTA, ID switches)")
    check_installed("scipy", "--data posetrack:... (the tracker's optimal assignment)")
    if args.flip_test or args.max_images:
        raise ConfigError("--flip-test and --max-images do not apply to --data posetrack:...; expected neither")
    dets = load_detections(args.detections, min_score=args.det_min_score) if args.detections else None
    rt, name = _eval_runtime(args)
    with rt:
        stats = evaluate_tracking(rt, args.data, detections=dets, progress=not args.no_progress)
    if args.json:
        print(json.dumps(stats, indent=2))
    else:
        print(f"{name} on {args.data} ({stats['num_videos']} videos, {stats['num_labeled']} labelled of "
              f"{stats['num_frames']} frames): MOTA {100 * stats['MOTA']:.1f}  ID switches {stats['num_switches']}  "
              f"misses {stats['num_misses']}  false positives {stats['num_false_positives']}  (of "
              f"{stats['num_objects']} labelled joints)")
    return 0


def _detections_for(args, coco) -> dict | None:
    """--detections read for ``coco``'s images; an error when none of its boxes belongs to them."""
    if args.detections is None:
        return None
    from edgepose.data.coco import load_detections

    dets = load_detections(args.detections, min_score=args.det_min_score)
    ids = set(list(coco.image_ids)[: args.max_images or None])
    if not ids & set(dets):
        raise ConfigError(f"--detections {args.detections}: no person box (score >= {args.det_min_score:g}) for "
                          f"any image of {args.data} (its image ids {sorted(ids)[:3]}...; the file's "
                          f"{sorted(dets)[:3]}); expected detections of the same images")
    return dets


def _eval_runtime(args):
    """(an unloaded-or-loaded Runtime, a label): a bundle folder runs on its backend, anything else in PyTorch."""
    if Path(args.model).is_dir():
        import edgepose
        from edgepose.bundle import read_bundle

        if args.weights is not None:
            raise ConfigError(f"--weights {args.weights} given with the bundle {args.model}, whose weights are "
                              "fixed; expected --weights only with a model name")
        manifest = read_bundle(args.model, verify=False).manifest
        rt = edgepose.load(args.model, **({"threads": args.threads} if args.threads else {}))
        label = f"{(manifest.get('model') or {}).get('name', Path(args.model).name)} · {manifest['target']} · " \
                f"{manifest['precision']}"
        return rt, label
    from edgepose.models.checkpoint import load_model
    from edgepose.runtimes.torch import TorchRuntime

    model = load_model(args.model, args.weights)
    return TorchRuntime(model, threads=args.threads), model.edgepose_meta.name
