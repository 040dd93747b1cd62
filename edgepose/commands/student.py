"""Student options shared by ``edgepose train`` and ``edgepose distill``: input size, a MoveNet trunk to start
from, and a frozen trunk."""

from __future__ import annotations

from edgepose.errors import ConfigError


def add_trunk_args(p) -> None:
    p.add_argument("--input-size", nargs=2, type=int, default=None, metavar=("W", "H"),
                   help="the model's input size in pixels (multiples of 32; default: the model's own)")
    p.add_argument("--init-trunk", default=None, metavar="MOVENET",
                   help="start from a MoveNet model's pose-trained weights: movenet-heatmap-edge takes "
                        "movenet-lightning's trunk, pyramid and joint heatmaps, movenet-centernet-edge "
                        "movenet-multipose's trunk, pyramid and every head with a CenterNet counterpart, a "
                        "MobileNetV2 x1.0 model (e.g. simplebaseline-mnv2-edge) Lightning's trunk "
                        "(edgepose.models.movenet_trunk)")
    p.add_argument("--freeze-trunk", action="store_true",
                   help="train only what follows the trunk (pyramid / neck and heads): a pretrained trunk keeps its "
                        "features when the footage is narrow (few scenes), instead of fitting those scenes")
    p.add_argument("--freeze-pyramid", action="store_true",
                   help="with --freeze-trunk: keep a MoveNet-family student's feature pyramid too, so only the heads "
                        "learn. MoveNet has no normalisation layers: one AdamW step at lr 2e-4 on its pyramid blew "
                        "movenet-centernet-edge's centre loss from 1.8 to 8700")
    p.add_argument("--train-heads", default=None, metavar="NAME[,NAME]",
                   help="with --freeze-pyramid: only these heads learn, the others keep their weights (e.g. "
                        "hp_offset,reg for a movenet-centernet-edge whose other heads came from MultiPose)")


def prepare_trunk(model, args) -> dict | None:
    """--init-trunk, then --freeze-trunk, on a freshly built model. Returns where the copied weights come from
    (``{"model", "source", "licence"}`` from the MoveNet checkpoint's info), None without --init-trunk."""
    origin = None
    if args.init_trunk:
        from edgepose.models.checkpoint import INFO_KEY, load_model
        from edgepose.models.movenet_trunk import trunk_from_movenet

        movenet = load_model(args.init_trunk)
        n = trunk_from_movenet(model, movenet)
        print(f"trunk: {n} tensors from {args.init_trunk}")
        info = movenet.edgepose_meta.config.get(INFO_KEY) or {}
        origin = {"model": args.init_trunk, **{k: info[k] for k in ("source", "licence") if k in info}}
    freeze_pyramid = getattr(args, "freeze_pyramid", False)  # a Namespace built by hand may lack it
    if getattr(args, "train_heads", None) and not freeze_pyramid:
        raise ConfigError(f"--train-heads {args.train_heads}: needs --freeze-trunk --freeze-pyramid (heads learning "
                          "on a moving pyramid would leave the kept heads reading features they were not made for)")
    if freeze_pyramid and not args.freeze_trunk:
        raise ConfigError("--freeze-pyramid needs --freeze-trunk (a pyramid learning on a moving trunk is the case "
                          "--freeze-pyramid exists to avoid); expected both flags")
    if args.freeze_trunk:
        frozen = [getattr(model, "backbone", None) or getattr(model, "features", None)]
        if frozen[0] is None:
            raise ConfigError(f"--freeze-trunk: {model.edgepose_meta.name} has no MobileNetV2 trunk (backbone / "
                              "features) to freeze; expected a MoveNet-family or MobileNetV2 model")
        if freeze_pyramid:
            frozen.append(getattr(model, "fpn", None))
            if frozen[-1] is None:
                raise ConfigError(f"--freeze-pyramid: {model.edgepose_meta.name} has no feature pyramid (fpn); "
                                  "expected a MoveNet-family student (movenet-heatmap-edge, movenet-centernet-edge)")
        import torch

        frozen += _frozen_heads(model, getattr(args, "train_heads", None))
        frozen = torch.nn.ModuleList(frozen)
        for p in frozen.parameters():
            p.requires_grad_(False)
        frozen.eval()  # BatchNorm statistics stay too
        model.train = _train_keeping_eval(model, frozen)
    return origin


def _frozen_heads(model, train_heads: str | None) -> list:
    """The heads --train-heads keeps (every head but the named ones); [] without the option."""
    if not train_heads:
        return []
    names = [n.strip() for n in train_heads.split(",") if n.strip()]
    heads = model.heads  # a model with a pyramid (checked before) is a MoveNet-family one, with a head dict
    unknown = [n for n in names if n not in heads]
    if unknown or not names:
        raise ConfigError(f"--train-heads {train_heads}: {model.edgepose_meta.name} has no head "
                          f"{', '.join(unknown) or '(none named)'}; expected some of {', '.join(heads)}")
    return [h for n, h in heads.items() if n not in names]


def _train_keeping_eval(model, frozen):
    """``model.train`` that leaves the frozen trunk in eval mode (its BatchNorm statistics do not move)."""
    base = type(model).train

    def train(mode: bool = True):
        base(model, mode)
        frozen.eval()
        return model

    return train
