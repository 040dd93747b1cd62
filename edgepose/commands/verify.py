"""``edgepose verify``: check a bundle on this device against the golden samples it carries."""

from __future__ import annotations

import json

from edgepose.backends import backend_names
from edgepose.commands.base import command


def _verify_args(p) -> None:
    p.add_argument("bundle", metavar="BUNDLE", help="a bundle folder made by `edgepose export`")
    p.add_argument("--backend", default=None, choices=backend_names(),
                   help="run the bundle on this backend instead of the manifest's")
    p.add_argument("--threads", type=int, default=None, help="inference threads (default: the backend's)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.epilog = ("Stages: preprocess (crops, in grey levels), inference (raw outputs, as a share of their range), "
                "decode and end-to-end (keypoints, in model-input pixels). Exit code 1 when a stage is outside "
                "the tolerance the manifest records for the bundle's precision.")


@command("verify", "run a bundle's golden samples on this device and report per stage where it deviates")(
    _verify_args)
def run_verify(args) -> int:
    from edgepose.bundle import read_bundle
    from edgepose.runtimes import load
    from edgepose.verify import remember, verify_runtime

    bundle = read_bundle(args.bundle)
    with load(bundle.path, backend=args.backend, threads=args.threads) as rt:
        report = verify_runtime(rt, bundle)
    remember(bundle, report)
    print(json.dumps(report.to_dict(), indent=2) if args.json else "\n".join(report.lines()))
    return 0 if report.passed else 1
