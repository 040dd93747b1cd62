"""``edgepose devices``: the device profiles, with the one that fits this machine marked."""

from __future__ import annotations

import json
from dataclasses import asdict

from edgepose.commands.base import command

COLUMNS = ("name", "target", "precision", "threads", "input", "DLA", "notes")


def _devices_args(p) -> None:
    p.add_argument("--json", action="store_true",
                   help="print {detected, fingerprint, profiles} as JSON instead of a table")


def _row(profile, detected: str | None) -> list[str]:
    mark = "*" if profile.name == detected else " "
    size = f"{profile.input_size[0]}x{profile.input_size[1]}" if profile.input_size else "model"
    return [f"{mark}{profile.name}", profile.target, profile.precision,
            "auto" if profile.threads is None else str(profile.threads), size, "yes" if profile.dla else "no",
            profile.summary()]


@command("devices", "list the device profiles (recommended target, precision, threads) and detect this one")(
    _devices_args)
def run_devices(args) -> int:
    from edgepose.devices import PROFILES, fingerprint

    fp = fingerprint()
    detected = fp["profile"]
    if args.json:
        profiles = [asdict(p) for p in PROFILES.values()]
        print(json.dumps({"detected": detected, "fingerprint": fp, "profiles": profiles}, indent=2))
        return 0
    rows = [[f" {COLUMNS[0]}", *COLUMNS[1:]]] + [_row(p, detected) for p in PROFILES.values()]
    widths = [max(len(r[i]) for r in rows) for i in range(len(COLUMNS) - 1)]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)) + "  " + r[-1])
    print()
    found = f"* {detected}" if detected else "no profile matches"
    print(f"this machine: {fp['label']} → {found}")
    print("input: W x H, 'model' = the model's own; threads 'auto' = all physical cores (the backend's default); "
          "use with: edgepose export --device PROFILE|auto")
    return 0
