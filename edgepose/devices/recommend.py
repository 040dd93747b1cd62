"""What to deploy with on this machine: the detected device profile, checked against the backends installed.

``edgepose doctor`` prints it. Device side: no backend is imported to decide (``is_available`` imports only the
backend asked about).
"""

from __future__ import annotations

from dataclasses import dataclass

from edgepose.devices.profiles import DeviceProfile, get_profile


@dataclass
class Recommendation:
    profile: DeviceProfile | None
    target: str | None  # the profile's target, or None when no profile fits
    backend: str | None  # the backend that runs that target natively
    installed: bool  # that backend is usable here
    install: str | None  # what to run to make it usable (None when installed)
    fallback: str | None  # the profile's first target whose backend IS installed, when the recommended one is not
    fallback_backend: str | None = None

    def lines(self) -> list[str]:
        if self.profile is None:
            return ["recommendation: no device profile fits this machine; see `edgepose devices`"]
        p = self.profile
        head = f"recommendation: profile {p.name} ({p.title}): {p.target} {p.precision}"
        if self.installed:
            return [f"{head} on {self.backend} (installed) — edgepose export --device {p.name}"]
        out = [f"{head} on {self.backend}, not usable here: {self.install}"]
        if self.fallback:
            out.append(f"  with what is installed now: edgepose export --device {p.name} --target {self.fallback} "
                       f"(runs on {self.fallback_backend})")
        else:
            out.append("  no backend that runs on this device is installed: pip install 'edgepose[onnxruntime]' "
                       "is the smallest")
        return out


def native_backend(target: str) -> str | None:
    """The name of the backend a target's bundles are made for (None for an unknown target)."""
    from edgepose.backends import native_backend as _native

    found = _native(target)
    return found.name if found else None


def recommend(profile_name: str | None, available=None) -> Recommendation:
    """The recommendation for profile ``profile_name`` (None: nothing fits). ``available(backend) -> bool``
    defaults to the backend descriptor's ``is_available``."""
    from edgepose.backends import get_backend

    if profile_name is None:
        return Recommendation(None, None, None, False, None, None)
    available = available or (lambda name: get_backend(name).is_available())
    p = get_profile(profile_name)
    backend = native_backend(p.target)
    if available(backend):
        return Recommendation(p, p.target, backend, True, None, None)
    fallback = next((t for t in p.targets if t != p.target and available(native_backend(t))), None)
    return Recommendation(p, p.target, backend, False, get_backend(backend).unavailable_reason(), fallback,
                          native_backend(fallback) if fallback else None)
