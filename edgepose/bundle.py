"""Deployment bundles: a directory with ``manifest.json`` and the target's model file(s).

Device side: the reader needs only the standard library (and the runtime's own backend). Writing is
atomic — everything goes into a temporary sibling directory that is renamed into place at the end, so
an interrupted export leaves no half-bundle behind. Reading validates the schema version and the
sha256 of every file, so a tampered or truncated model never loads silently.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from edgepose import __version__
from edgepose.errors import BundleError, EdgeposeError
from edgepose.utils.fs import existing_parent, make_public
from edgepose.utils.signals import remove_on_terminate, signals_deferred

SCHEMA_VERSION = 1
MANIFEST = "manifest.json"
REQUIRED_KEYS = ("schema_version", "target", "backend", "precision", "spec", "model_file", "files")


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


@dataclass
class Bundle:
    """A validated bundle on disk."""

    path: Path
    manifest: dict

    @property
    def model_path(self) -> Path:
        return self.path / self.manifest["model_file"]

    @property
    def target(self) -> str:
        return self.manifest["target"]

    @property
    def backend(self) -> str:
        return self.manifest["backend"]

    def spec(self):
        from edgepose.spec import ModelSpec

        return ModelSpec.from_dict(self.manifest["spec"])


def read_bundle(path: str | Path, *, verify: bool = True) -> Bundle:
    """Open and validate a bundle: manifest present and parseable, schema not from the future, files intact."""
    path = Path(path)
    if not path.exists():
        raise BundleError(f"bundle not found: {path}")
    if not path.is_dir():
        raise BundleError(f"{path} is a file; a bundle is a directory with {MANIFEST} (made by `edgepose export` "
                          "or `edgepose import`)")
    mpath = path / MANIFEST
    if not mpath.is_file():
        raise BundleError(f"{path} has no {MANIFEST}; expected a bundle made by `edgepose export` or `edgepose import`")
    try:
        manifest = json.loads(mpath.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BundleError(f"{mpath} is not valid JSON ({exc})") from None
    if not isinstance(manifest, dict):
        raise BundleError(f"{mpath} holds {type(manifest).__name__}, expected a JSON object")
    missing = [k for k in REQUIRED_KEYS if k not in manifest]
    if missing:
        raise BundleError(f"{mpath} lacks required keys {missing}")
    version = manifest["schema_version"]
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise BundleError(f"{mpath} has schema_version {version!r}; expected an integer from 1 to {SCHEMA_VERSION}")
    if version > SCHEMA_VERSION:
        raise BundleError(f"{mpath} has schema_version {version!r}; this edgepose ({__version__}) reads versions "
                          f"<= {SCHEMA_VERSION}: upgrade edgepose")
    _check_structure(mpath, manifest)
    if verify:
        verify_files(path, manifest)
    return Bundle(path, manifest)


def _check_structure(mpath: Path, manifest: dict) -> None:
    """One-line BundleErrors for a hand-edited manifest (wrong types, paths leaving the bundle, a bad spec)."""
    files, model_file = manifest["files"], manifest["model_file"]
    if not isinstance(files, dict):
        raise BundleError(f"{mpath}: 'files' is {type(files).__name__}; expected an object {{name: {{sha256, bytes}}}}")
    for name, info in files.items():
        if Path(name).is_absolute() or ".." in Path(name).parts:
            raise BundleError(f"{mpath}: file {name!r} lies outside the bundle; expected a path inside it")
        if not isinstance(info, dict) or not isinstance(info.get("sha256"), str) \
                or not isinstance(info.get("bytes", 0), int):
            raise BundleError(f"{mpath}: files[{name!r}] is {info!r:.80}; expected {{'sha256': hex str, 'bytes': int}}")
    if not isinstance(model_file, str) or model_file not in files:
        raise BundleError(f"{mpath}: model_file {model_file!r} is not listed under 'files' ({', '.join(files)})")
    for key in ("target", "backend", "precision"):
        if not isinstance(manifest[key], str):
            raise BundleError(f"{mpath}: {key!r} is {manifest[key]!r}; expected a string")
    from edgepose.spec import ModelSpec

    try:
        spec = ModelSpec.from_dict(manifest["spec"])
        if spec.codec:
            from edgepose.codecs import codec_from_dict

            codec_from_dict(spec.codec)
    except EdgeposeError as exc:
        raise BundleError(f"{mpath}: bad 'spec': {exc}") from None
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise BundleError(f"{mpath}: malformed 'spec' ({type(exc).__name__}: {exc}); expected the spec object "
                          "`edgepose export` writes") from None


def verify_files(path: Path, manifest: dict) -> None:
    files = manifest["files"]
    if manifest["model_file"] not in files:
        raise BundleError(f"{path / MANIFEST}: model_file {manifest['model_file']!r} is not listed under 'files'")
    for name, info in files.items():
        fpath = path / name
        if not fpath.is_file():
            raise BundleError(f"bundle {path} is missing {name}")
        size = fpath.stat().st_size
        if size != info.get("bytes", size):
            raise BundleError(f"{fpath} has {size} bytes, the manifest says {info['bytes']} (truncated or replaced)")
        digest = sha256_file(fpath)
        if digest != info["sha256"]:
            raise BundleError(f"{fpath} sha256 {digest[:12]}… does not match the manifest's {info['sha256'][:12]}… "
                              "(the file was modified after export)")


@contextlib.contextmanager
def bundle_writer(out: str | Path, *, overwrite: bool = True) -> Iterator[Path]:
    """Yield a temporary directory to fill; on success it atomically becomes ``out``.

    The caller writes model files and finally calls :func:`write_manifest` inside the block. On any
    exception (KeyboardInterrupt included) the temporary directory is removed and ``out`` is untouched.
    """
    out = Path(out).absolute()
    if out.exists() and not out.is_dir():
        raise BundleError(f"{out} is a file; expected a directory (new or a bundle) to write the bundle into")
    above = existing_parent(out)
    if not above.is_dir():
        raise BundleError(f"{out}: {above} is a file; expected a path whose existing parents are folders")
    if out.exists() and not (out / MANIFEST).is_file() and any(out.iterdir()):
        raise BundleError(f"{out} exists and is not an edgepose bundle; refusing to overwrite it")
    if out.exists() and not overwrite:
        raise BundleError(f"{out} already exists (pass overwrite=True / --force to replace it)")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    try:
        make_public(tmp)  # mkdtemp's 0700 would make the bundle unreadable to a deploy user or service
        with remove_on_terminate(tmp):
            yield tmp
            if not (tmp / MANIFEST).is_file():
                raise BundleError("internal error: bundle written without a manifest")
            _swap_into_place(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _swap_into_place(tmp: Path, out: Path) -> None:
    old = None
    with signals_deferred():  # Ctrl-C / SIGTERM between the two renames would leave no bundle at ``out``
        if out.exists():
            old = out.parent / f".{out.name}.old-{os.getpid()}"
            os.replace(out, old)
        os.replace(tmp, out)
    if old is not None:
        with remove_on_terminate(old):
            shutil.rmtree(old, ignore_errors=True)


def write_manifest(bundle_dir: Path, manifest: dict) -> dict:
    """Hash every file in ``bundle_dir`` into the manifest and write it (temp + rename)."""
    files = {}
    for f in sorted(bundle_dir.rglob("*")):
        if f.is_file() and f.name != MANIFEST:
            rel = f.relative_to(bundle_dir).as_posix()
            files[rel] = {"sha256": sha256_file(f), "bytes": f.stat().st_size}
    manifest = dict(manifest, files=files, schema_version=SCHEMA_VERSION, edgepose_version=__version__)
    manifest.setdefault("created", _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"))
    missing = [k for k in REQUIRED_KEYS if k not in manifest]
    if missing:
        raise BundleError(f"internal error: manifest lacks {missing}")
    tmp = bundle_dir / f".{MANIFEST}.tmp"
    tmp.write_text(json.dumps(manifest, indent=2, sort_keys=True))
    os.replace(tmp, bundle_dir / MANIFEST)
    return manifest
