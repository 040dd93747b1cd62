"""``edgepose distill``: train a student on real footage pseudo-labelled by a real teacher."""

from __future__ import annotations

import json
from pathlib import Path

from edgepose.commands.base import command
from edgepose.errors import ConfigError, DataError
from edgepose.utils.fs import check_output_file


def _distill_args(p) -> None:
    from edgepose.commands.student import add_trunk_args

    p.add_argument("--student", required=True,
                   help="the model to train: a registered name (see `edgepose models`) or an edgepose checkpoint")
    p.add_argument("--weights", default=None,
                   help="the student's starting checkpoint: 'default' (its embedded weights; the default when it "
                        "has some), 'none' (random init) or a checkpoint path")
    add_trunk_args(p)
    p.add_argument("--data", nargs="+", required=True, metavar="SOURCE",
                   help="real footage to pseudo-label and train on: videos, images, or folders of them")
    p.add_argument("--val", nargs="*", default=[], metavar="SOURCE",
                   help="held-out footage (other whole videos than --data): pseudo-labelled too, and the trained "
                        "student is scored against those labels (OKS AP vs the teacher)")
    p.add_argument("--eval", nargs="*", default=[], metavar="DATA",
                   help="labelled data to score the student on after training, e.g. "
                        "coco:../shared/data/coco-mini/test_coco.json (ground-truth boxes for top-down students)")
    p.add_argument("--teacher", default="movenet-thunder",
                   help="top-down teacher that reads each person's joints (name or checkpoint)")
    p.add_argument("--person-teacher", default="movenet-multipose",
                   help="bottom-up teacher that finds the people and their boxes on whole frames")
    p.add_argument("--person-score", type=float, default=0.15,
                   help="keep people the person teacher scores at least this (0..1; lower ones are ignored regions)")
    p.add_argument("--joint-score", type=float, default=0.3,
                   help="joints the teacher scores below this (0..1) are unlabelled")
    p.add_argument("--min-joints", type=int, default=6, help="keep people with at least this many labelled joints")
    p.add_argument("--soft-weight", type=float, default=0.0, metavar="W",
                   help="share (0..1) of the loss pulling a heatmap student towards the --teacher's own keypoint "
                        "heatmaps on every training crop (soft targets; the teacher runs on each batch, a MoveNet "
                        "single-pose model); 0 = the pseudo-labels' Gaussians only")
    p.add_argument("--frame-stride", type=int, default=1, help="label every N-th video frame")
    p.add_argument("--synthetic-ratio", type=float, default=0.25,
                   help="share of synthetic samples in each epoch (0..1, exclusive of 1; 0: real frames only)")
    p.add_argument("--synthetic-images", type=int, default=None, metavar="N",
                   help="size of the synthetic set the synthetic share is drawn from (default: the full training set, "
                        "generated once and cached in $EDGEPOSE_CACHE)")
    p.add_argument("--max-per-video", type=int, default=None, metavar="N",
                   help="use at most N training samples of each video per epoch (a new random subset each epoch), so "
                        "that one long clip does not outweigh the rest (default: every sample)")
    p.add_argument("--no-real-augment", action="store_true",
                   help="no motion blur, occlusion patches or box jitter (flip, rotation, scale, colour remain)")
    p.add_argument("--flip-prob", type=float, default=0.5, help="horizontal-flip probability for real frames")
    p.add_argument("--paste-prob", type=float, default=0.0, metavar="P",
                   help="top-down students: probability of pasting another training person beside the crop's own "
                        "(a crowd; the targets stay the centred person's). Default 0")
    p.add_argument("--epochs", type=int, default=20, help="passes over the real (+ synthetic share) samples")
    p.add_argument("--batch-size", type=int, default=32, help="samples per step")
    p.add_argument("--lr", type=float, default=1e-3, help="peak AdamW learning rate (cosine decay)")
    p.add_argument("--seed", type=int, default=0, help="seed for shuffling and augmentation")
    p.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    p.add_argument("--workers", type=int, default=1, help="data-loading worker processes")
    p.add_argument("--labels-only", action="store_true", help="pseudo-label (and cache) the footage, then stop")
    p.add_argument("--out", default=None, help="student checkpoint path (rewritten atomically every epoch)")
    p.add_argument("--save-half", action="store_true",
                   help="write the final checkpoint in float16 (half the size; loads as float32)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


@command("distill", "train a student on real footage pseudo-labelled by a real teacher (MoveNet by default)")(
    _distill_args)
def run_distill(args) -> int:
    from edgepose.distill.pseudo import LabelOptions, Teacher
    from edgepose.heads import get_head

    opts = LabelOptions(person_score=args.person_score, joint_score=args.joint_score, min_joints=args.min_joints,
                        frame_stride=args.frame_stride)
    opts.validate()
    cfg = _train_config(args)
    if not 0.0 <= args.soft_weight <= 1.0:
        raise ConfigError(f"--soft-weight must be in [0, 1] (the soft targets' share of the loss), got "
                          f"{args.soft_weight}")
    if not args.labels_only:
        if args.out is None:
            raise ConfigError("--out is required (the student checkpoint path) unless --labels-only")
        check_output_file(args.out, "--out", creates_folders=True)
    _check_split(args.data, args.val)
    student, origin = _student(args)
    if args.paste_prob > 0 and get_head(student.edgepose_meta.kind).bottom_up:
        raise ConfigError(f"--paste-prob {args.paste_prob}: pasting a person is for top-down crops, "
                          f"{student.edgepose_meta.name} is bottom-up; expected --paste-prob 0")
    soft = _soft_targets(student, args)
    teacher = Teacher(args.person_teacher, args.teacher, keypoints=student.edgepose_meta.keypoints,
                      threads=args.threads)
    try:
        train_set, train_info = _label("--data", args.data, teacher, opts, args)
        val_set = _label("--val", args.val, teacher, opts, args)[0] if args.val else None
    finally:
        teacher.close()
    if args.labels_only:
        return 0
    hist = _train(student, train_set, cfg, args, soft)
    results = _evaluate(student, val_set, args)
    _save(student, args.out, hist, cfg, train_info, results, half=args.save_half, origin=origin,
          soft_weight=args.soft_weight)
    return 0


def _train_config(args):
    from edgepose.distill.mix import synthetic_count
    from edgepose.train.loop import TrainConfig

    synthetic_count(1, args.synthetic_ratio)  # range check before any work
    if args.synthetic_images is not None and args.synthetic_images < 1:
        raise ConfigError(f"--synthetic-images must be >= 1, got {args.synthetic_images}")
    if not 0.0 <= args.flip_prob <= 1.0:
        raise ConfigError(f"--flip-prob must be in [0, 1], got {args.flip_prob}")
    if not 0.0 <= args.paste_prob <= 1.0:
        raise ConfigError(f"--paste-prob must be in [0, 1] (a probability), got {args.paste_prob}")
    if args.paste_prob > 0 and args.no_real_augment:
        raise ConfigError("--paste-prob is part of the real-footage augmentation; expected it without "
                          "--no-real-augment")
    cfg = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, seed=args.seed,
                      threads=args.threads, workers=args.workers, progress=not args.no_progress)
    cfg.validate()
    return cfg


def _check_split(data: list[str], val: list[str]) -> None:
    """--val must hold other files than --data: frames of one video are too alike to test on."""
    from edgepose.distill.pseudo import source_files

    shared = {f.resolve() for f in source_files(data)} & ({f.resolve() for f in source_files(val)} if val else set())
    if shared:
        raise ConfigError(f"--val shares {len(shared)} file(s) with --data (e.g. {sorted(shared)[0]}); expected "
                          "held-out footage: split by whole video, never by frame")


def _student(args):
    """(the student model, where its copied trunk comes from or None)."""
    from edgepose.commands.student import prepare_trunk
    from edgepose.heads import check_trainable
    from edgepose.models import create, get_factory
    from edgepose.models.checkpoint import load_checkpoint
    from edgepose.weights import DEFAULTS

    if Path(args.student).suffix in (".pt", ".pth", ".ckpt") or Path(args.student).is_file():
        if args.weights is not None or args.input_size:
            raise ConfigError(f"--weights / --input-size given with the checkpoint --student {args.student}, which "
                              "fixes both; expected a model name with them")
        model = load_checkpoint(args.student)
    else:
        get_factory(args.student)  # unknown name → close-match error
        weights = args.weights or ("default" if args.student in DEFAULTS else None)
        size = {"input_size": tuple(args.input_size)} if args.input_size else {}
        model = create(args.student, weights=None if weights == "none" else weights, **size)
    check_trainable(model)
    return model, prepare_trunk(model, args)


def _soft_targets(student, args):
    """The soft targets of ``--soft-weight`` (None at 0), checked before any labelling."""
    if args.soft_weight == 0:
        return None
    from edgepose.distill.soft import SoftTargets
    from edgepose.models.checkpoint import load_model

    return SoftTargets(load_model(args.teacher), student, args.soft_weight)


def _label(flag: str, sources: list[str], teacher, opts, args):
    from edgepose.distill.pseudo import pseudo_label

    coco, info = pseudo_label(sources, teacher, opts, progress=not args.no_progress)
    print(f"pseudo-labels ({flag}): {info['frames']} frames, {info['people']} people, {info['joints']} joints "
          f"({info['ignored_regions']} ignored regions) in {coco.ann_file}")
    if info["people"] == 0:
        raise DataError(f"{flag} {' '.join(sources)}: the teacher is confident about no person in "
                        f"{info['frames']} frames (--person-score {opts.person_score}, --min-joints "
                        f"{opts.min_joints}); expected footage with people")
    return coco, info


def _train(student, coco, cfg, args, soft=None) -> dict:
    from edgepose.data.augment_real import RealAugment
    from edgepose.data.sources import synthetic_dataset
    from edgepose.distill.mix import MixedDataset
    from edgepose.heads import get_head
    from edgepose.train.loop import train

    meta = student.edgepose_meta
    head = get_head(meta.kind)
    real = head.train_dataset(coco, meta, train=True, seed=args.seed, flip_prob=args.flip_prob,
                              real=None if args.no_real_augment else RealAugment(paste_prob=args.paste_prob))
    synthetic = None
    if args.synthetic_ratio > 0:  # no flip: the synthetic figures mark their left side by shading
        syn = synthetic_dataset(head.sample_mode, "train", args.synthetic_images, progress=not args.no_progress)
        synthetic = head.train_dataset(syn, meta, train=True, seed=args.seed, flip_prob=0.0)
    dataset = MixedDataset(real, synthetic, args.synthetic_ratio, max_per_video=args.max_per_video, seed=args.seed)
    if soft is not None:
        dataset.step_loss = soft.step_loss
    print(f"training {meta.name}: {dataset.num_real} real + {dataset.num_synthetic} synthetic samples per epoch, "
          f"{cfg.epochs} epochs" + (f", soft targets from {args.teacher} (weight {soft.weight})" if soft else ""))
    return train(student, dataset, cfg, out=args.out)


def _evaluate(student, val_set, args) -> dict:
    """AP (and its 95 % bootstrap interval) against the teacher on --val, and on every --eval set."""
    from edgepose.data.sources import resolve_dataset
    from edgepose.eval.evaluate import ap_with_interval
    from edgepose.heads import get_head
    from edgepose.runtimes.torch import TorchRuntime

    sets = [("--val (vs teacher)", val_set)] if val_set is not None else []
    for spec in args.eval:
        sets.append((spec, resolve_dataset(spec, get_head(student.edgepose_meta.kind).sample_mode, split="val",
                                           progress=not args.no_progress, flag="--eval")))
    results = {}
    with TorchRuntime(student.eval(), threads=args.threads) as rt:
        for name, coco in sets:
            ap, (lo, hi) = ap_with_interval(rt, coco)
            results[name] = {"AP": round(ap, 2), "interval95": [round(lo, 2), round(hi, 2)],
                             "images": len(coco.image_ids)}
            print(f"{student.edgepose_meta.name} on {name}: OKS AP {ap:.1f} (95 % interval {lo:.1f}-{hi:.1f}, "
                  f"{len(coco.image_ids)} images)")
    return results


def _save(student, out: str, hist: dict, cfg, train_info: dict, results: dict, *, half: bool = False,
          origin: dict | None = None, soft_weight: float = 0.0) -> None:
    from edgepose.models.checkpoint import save_checkpoint

    info = {"epochs_done": cfg.epochs, "train_seconds": round(hist["seconds"], 1), "loss": hist["loss"],
            "config": {k: v for k, v in vars(cfg).items() if k != "progress"},
            "distill": {"labels": {k: train_info[k] for k in ("frames", "people", "joints", "teachers", "options")},
                        "results": results, "soft_weight": soft_weight}}
    if origin:  # the weights derive from another model's: keep where from and under what licence
        info["init_trunk"] = origin
    if half:
        info["stored_as"] = "float16 (the results above were measured in float32)"
    save_checkpoint(student.half() if half else student, out, info=info)
    student.float()
    print(f"student checkpoint: {out} (trained {hist['seconds']:.0f} s); results: {json.dumps(results)}")

