"""`capdex models ...` through typer's runner (mounted as a sub-app by api/cli.py)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from capdex.api.cli_models import models_app
from capdex.captioners import create
from tests.captioners.conftest import BUILTIN_MODELS, make_settings

runner = CliRunner()


def test_list_json_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CAPDEX_DATA_DIR", str(tmp_path / "data"))
    result = runner.invoke(models_app, ["list", "--json"])
    assert result.exit_code == 0, result.output
    models = {m["name"]: m for m in json.loads(result.stdout)["models"]}
    assert BUILTIN_MODELS <= set(models)
    for model in models.values():
        assert {"name", "kind", "path", "installed", "size_bytes", "hub_id"} <= set(model)
    assert models["blip-base"]["hub_id"] == "Salesforce/blip-image-captioning-base"
    assert models["blip-base"]["path"] == str(tmp_path / "data" / "models" / "blip-base")
    assert models["blip-base"]["installed"] is False
    assert models["im2txt-onnx"]["kind"] == "onnx"
    assert models["ollama"]["endpoint"] == "http://127.0.0.1:11434"
    assert models["vit-gpt2"]["hub_id"] == "nlpconnect/vit-gpt2-image-captioning"
    assert models["blip2"]["hub_id"] == "Salesforce/blip2-opt-2.7b"
    assert models["hf-vlm"]["hub_id"] == "HuggingFaceTB/SmolVLM-256M-Instruct"
    assert models["anthropic"]["endpoint"] == "https://api.anthropic.com"


def test_list_sees_installed_models(tmp_path: Path, blip_dir: Path) -> None:
    data = tmp_path / "data"
    shutil.copytree(blip_dir, data / "models" / "blip-large")
    result = runner.invoke(models_app, ["list", "--json", "--data-dir", str(data)])
    models = {m["name"]: m for m in json.loads(result.stdout)["models"]}
    assert models["blip-large"]["installed"] is True and models["blip-large"]["size_bytes"] > 0
    table = runner.invoke(models_app, ["list", "--data-dir", str(data)])
    assert table.exit_code == 0 and "blip-large" in table.stdout and "moondream2" in table.stdout


def test_download_offline_fails_with_a_message(tmp_path: Path) -> None:
    result = runner.invoke(models_app, ["download", "blip-base", "--data-dir", str(tmp_path)])
    assert result.exit_code == 1
    assert "HF_HUB_OFFLINE" in result.output and "Traceback" not in result.output


def test_download_unknown_model(tmp_path: Path) -> None:
    result = runner.invoke(models_app, ["download", "nope", "--data-dir", str(tmp_path)])
    assert result.exit_code == 1 and "unknown model 'nope'" in result.output


def test_export_needs_an_installed_im2txt(tmp_path: Path) -> None:
    result = runner.invoke(models_app, ["export", "im2txt", "--data-dir", str(tmp_path)])
    assert result.exit_code == 1
    assert "capdex models download im2txt" in result.output
    other = runner.invoke(models_app, ["export", "blip-base", "--data-dir", str(tmp_path)])
    assert other.exit_code == 2 and "only im2txt" in other.output


@pytest.mark.slow
def test_export_then_caption_with_onnx(tmp_path: Path, im2txt_dir: Path) -> None:
    folder = tmp_path / "im2txt"
    shutil.copytree(im2txt_dir, folder, ignore=shutil.ignore_patterns("onnx"))
    result = runner.invoke(
        models_app, ["export", "im2txt", "--model-path", str(folder), "--data-dir", str(tmp_path)]
    )
    assert result.exit_code == 0, result.output
    assert (folder / "onnx" / "encoder.onnx").is_file()
    assert (folder / "onnx" / "decoder_step.onnx").is_file()
    assert "--captioner im2txt-onnx" in result.stdout
    photo = Image.new("RGB", (50, 40), (90, 160, 30))
    onnx = create("im2txt-onnx", make_settings(tmp_path, "im2txt-onnx", model_path=folder))
    pytorch = create("im2txt", make_settings(tmp_path, "im2txt", model_path=folder))
    assert onnx.caption(photo) == pytorch.caption(photo)


def test_list_names_the_hub_model_chosen_for_hf_vlm(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, llava_dir: Path
) -> None:
    data = tmp_path / "data"
    shutil.copytree(llava_dir, data / "models" / "hf-vlm" / "llava-hf--llava-1.5-7b-hf")
    monkeypatch.setenv("CAPDEX_CAPTIONER", "hf-vlm")
    monkeypatch.setenv("CAPDEX_CAPTIONER_MODEL", "Qwen/Qwen2-VL-2B-Instruct")
    result = runner.invoke(models_app, ["list", "--json", "--data-dir", str(data)])
    rows = [m for m in json.loads(result.stdout)["models"] if m["name"] == "hf-vlm"]
    assert [(r["hub_id"], r["installed"]) for r in rows] == [
        ("Qwen/Qwen2-VL-2B-Instruct", False),
        ("llava-hf/llava-1.5-7b-hf", True),
    ]
    table = runner.invoke(models_app, ["list", "--data-dir", str(data)])
    assert table.exit_code == 0 and "Qwen" in table.stdout and "llava-hf" in table.stdout


def test_download_with_a_model_offline_names_its_folder(tmp_path: Path) -> None:
    result = runner.invoke(
        models_app,
        ["download", "hf-vlm", "--model", "Qwen/Qwen2-VL-2B-Instruct", "--data-dir", str(tmp_path)],
    )
    assert result.exit_code == 1 and "HF_HUB_OFFLINE" in result.output
    assert "Qwen--Qwen2-VL-2B-Instruct" in result.output.replace("\n", "")
    other = runner.invoke(models_app, ["download", "blip2", "--model", "x/y"])
    assert other.exit_code == 2 and "--model only applies" in other.output


def test_a_bad_hub_id_is_an_error_not_a_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CAPDEX_CAPTIONER", "hf-vlm")
    monkeypatch.setenv("CAPDEX_CAPTIONER_MODEL", "not a hub id")
    result = runner.invoke(models_app, ["list", "--data-dir", str(tmp_path)])
    assert result.exit_code == 1 and "neither an existing folder nor a hub id" in result.output


def test_list_reads_at_80_columns_and_says_what_http_models_need(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Names whole, lines within 80 columns, and an HTTP model with no key or server is not
    'installed': it says what to set (issue 19)."""
    for key in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "CAPDEX_CAPTIONER_ENDPOINT"):
        monkeypatch.delenv(key, raising=False)
    result = runner.invoke(models_app, ["list", "--data-dir", str(tmp_path)],
                           env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert all(len(line) <= 80 for line in lines), result.stdout
    entries = {line.split()[0]: line.split(None, 1)[1] for line in lines
               if line.startswith("  ") and not line.startswith("   ")}
    assert entries["tagger"] == "installed"
    assert entries["openai"] == entries["anthropic"] == entries["ollama"] == "needs setup"
    assert entries["blip-base"] == "not installed"
    assert "set ANTHROPIC_API_KEY" in result.stdout
    assert "capdex models download blip-large" in result.stdout.replace("\n", " ")
