"""Device detection and deployment profiles (device side: the standard library only, no backend import).

>>> from edgepose.devices import fingerprint, get_profile, apply_profile
>>> fingerprint()["label"]                      # e.g. 'AMD EPYC · 2 cores · x86_64'
>>> apply_profile("rpi5", target=None, precision=None, threads=None)   # ('tflite', 'int8', 4, [notes])
"""

from edgepose.devices.detect import detect_profile, fingerprint
from edgepose.devices.profiles import PROFILES, DeviceProfile, Resolved, apply_profile, get_profile, list_profiles

__all__ = ["PROFILES", "DeviceProfile", "Resolved", "apply_profile", "detect_profile", "fingerprint", "get_profile",
           "list_profiles", "profile_for"]


def profile_for(name: str) -> DeviceProfile:
    """The profile named ``name`` (a --device argument); ``auto`` = the one detected on this machine."""
    if name != "auto":
        return get_profile(name)
    from edgepose.errors import ConfigError

    fp = fingerprint()
    jetson = fp.get("jetson") or {}
    if fp["profile"] is None and jetson and not jetson.get("model"):
        jetsons = ", ".join(n for n in list_profiles() if n.startswith("jetson-"))
        raise ConfigError(f"--device auto: a Jetson (L4T {jetson.get('l4t') or '?'}) whose board model cannot be "
                          "read (in a container /proc/device-tree is usually masked); name its profile: "
                          f"{jetsons}")
    if fp["profile"] is None:
        raise ConfigError(f"--device auto: no device profile matches this machine ({fp['label']}); name one of: "
                          f"{', '.join(list_profiles())}")
    return get_profile(fp["profile"])
