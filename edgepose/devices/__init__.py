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
    if fp["profile"] is None:
        raise ConfigError(f"--device auto: no device profile matches this machine ({fp['label']}); name one of: "
                          f"{', '.join(list_profiles())}")
    return get_profile(fp["profile"])
