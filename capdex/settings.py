"""All configuration in one pydantic-settings object, built once and passed in (env prefix CAPDEX_)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AliasChoices, Field, SecretStr, ValidationInfo, field_validator
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

IMAGE_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff", ".heic", ".heif"}
)


def default_cache_dir() -> Path:
    """$XDG_CACHE_HOME/capdex, falling back to ~/.cache/capdex: what can be made again."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "capdex"


def default_data_dir() -> Path:
    """$XDG_DATA_HOME/capdex, falling back to ~/.local/share/capdex as the XDG spec says."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "capdex"


class _CaptionerEnvironment(PydanticBaseSettingsSource):
    """The CAPDEX_* variables no field claims, as `captioner_env` (captioner options)."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        claimed = set()
        for name, info in self.settings_cls.model_fields.items():
            claimed.add(f"CAPDEX_{name.upper()}")
            if isinstance(info.validation_alias, AliasChoices):
                claimed.update(str(choice).upper() for choice in info.validation_alias.choices)
        found = {key.upper(): value for key, value in os.environ.items()
                 if key.upper().startswith("CAPDEX_") and key.upper() not in claimed}
        return {"captioner_env": found} if found else {}


class Settings(BaseSettings):
    """Every knob capdex has. Environment variables are `CAPDEX_<FIELD>`."""

    model_config = SettingsConfigDict(env_prefix="CAPDEX_", extra="ignore")

    data_dir: Path = Field(default_factory=default_data_dir)
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; default is SQLite in the data dir."
    )

    # Captioning
    captioner: str = "tagger"
    model_path: Path | None = Field(
        default=None, description="Local model folder for the captioner (instead of its default)."
    )
    captioner_endpoint: str | None = Field(
        default=None, description="Base URL of an HTTP captioner (Ollama, OpenAI-compatible)."
    )
    captioner_model: str | None = Field(
        default=None, description="Model name for HTTP captioners, or a hub id for hub models."
    )
    batch_size: int | None = Field(
        default=None, ge=1, le=1024, description="Captioning batch size; default is the captioner's."
    )
    # A captioner's own knobs live on its class (`Options`, capdex/captioners/base.py): set them
    # as CAPDEX_<CAPTIONER>_<OPTION> (e.g. CAPDEX_TAGGER_MAX_LABELS=5; older names such as
    # CAPDEX_LLM_CONTEXT still work) or here, e.g. {"tagger": {"max_labels": 5}}.
    captioner_options: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="Per-captioner options by captioner name "
        "(CAPDEX_CAPTIONER_OPTIONS as JSON); they win over CAPDEX_<CAPTIONER>_<OPTION>.",
    )
    #: CAPDEX_* environment variables that are no field here: where captioners read their
    #: options from, so that the environment is read once, when the settings are built.
    captioner_env: dict[str, str] = Field(default_factory=dict, repr=False)

    # Embedding
    embedder: str = Field(
        default="all-MiniLM-L6-v2",
        description="sentence-transformers model name, hub id or local folder.",
    )
    embed_batch_size: int = Field(default=64, ge=1, le=4096)
    embedder_backend: Literal["auto", "onnx", "torch"] = Field(
        default="auto",
        description="auto: ONNX Runtime for a local transformer + mean-pooling model (the "
        "default MiniLM; no torch import, fast start), else sentence-transformers on torch.",
    )
    embedder_onnx_dir: Path | None = Field(
        default=None,
        description="Where the embedder's one-time ONNX export is kept; default "
        "$XDG_CACHE_HOME/capdex/embedders (~/.cache/capdex/embedders), shared by data dirs.",
    )

    # Indexing
    max_image_pixels: int = Field(
        default=120_000_000, ge=1, description="Larger images are refused (decompression bombs)."
    )
    follow_symlinks_out: bool = Field(
        default=False, description="Follow symbolic links that lead out of the folders being "
        "indexed (off: such links are listed by `capdex errors`, not followed).",
    )
    stop_grace_seconds: float = Field(
        default=10.0, ge=0.0, le=3600.0, description="After Ctrl-C or SIGTERM an index run "
        "that has not ended within this many seconds exits at once (as safe as kill -9); 0 waits.",
    )
    thumbnail_size: int = Field(default=384, ge=32, le=2048)
    preview_decodes: int | None = Field(
        default=None, ge=1, le=64, description="Full decodes the server runs at once (previews, "
        "thumbnails); default: what a quarter of the memory holds at CAPDEX_MAX_IMAGE_PIXELS.",
    )
    decode_threads: int = Field(default_factory=lambda: max(1, min(4, os.cpu_count() or 1)), ge=1)

    # Trustworthy indexing: how often a long run saves the vector index (so searches and a
    # crash lose little), and how watch mode groups file events into batches.
    index_save_seconds: float = Field(
        default=30.0, ge=0.0, description="A running index pass saves the vector index this often."
    )
    watch_debounce_seconds: float = Field(
        default=1.0, ge=0.0, le=600.0,
        description="Watch mode waits for this much quiet before indexing what changed.",
    )
    watch_max_delay_seconds: float = Field(
        default=10.0, ge=0.0, le=3600.0,
        description="...but indexes no later than this after the first change, even if busy.",
    )
    watch_poll_seconds: float = Field(
        default=10.0, ge=0.5, le=3600.0,
        description="With --poll, how often the folders are re-listed (each time, every file "
                    "is stat-ed: keep it long on big network shares).",
    )

    # Search: ranking modes, relevance cut-off, fusion weights, query cache, index choice.
    # Every mode scores in [0, 1] — semantic: cosine above the query's background
    # (search/calibration.py); keyword: IDF-weighted share of the query's words found; hybrid:
    # the two fused — so one cut-off means the same in each mode. Defaults measured on
    # tests/data/eval (README, "Search quality").
    search_mode: Literal["hybrid", "semantic", "keyword"] = "hybrid"
    # 0.3, not 0.2: on the sample photos plus 26 real photos from Debian's wallpaper packages,
    # 0.2 let 10 of 30 queries for things in no photo ("zebra crossing", "pizza", "sushi")
    # return unrelated photos (short captions such as "a maze" sit 0.2-0.3 above many
    # queries), 0.3 lets 2 through; the true matches it loses score no higher than those
    # unrelated ones (README, "Search quality").
    min_score: float = Field(
        default=0.3, ge=-1.0, le=1.0,
        description="Results scoring below this are not returned (per request: min_score).",
    )
    search_fusion: Literal["score", "rrf"] = Field(
        default="score",
        description="Hybrid fusion: 'score' (probabilistic OR of the weighted mode scores) or "
        "'rrf' (reciprocal rank fusion of the two rankings).",
    )
    search_semantic_weight: float = Field(default=1.0, ge=0.0, le=1.0)
    search_keyword_weight: float = Field(default=0.9, ge=0.0, le=1.0)
    search_rrf_k: int = Field(default=60, ge=1, le=10_000)
    query_cache_size: int = Field(
        default=256, ge=0, le=100_000, description="Query embeddings kept in memory (LRU)."
    )
    exact_search_max: int = Field(
        default=50_000, ge=1,
        description="Up to this many vectors search is exact; above, an IVF index is built.",
    )
    # Large indexes (issue 8). Above this many vectors the index is compressed (IVF-PQ, 72 bytes
    # a vector instead of MiniLM's 1.5 KB of floats) and searchers memory-map it. At a million
    # vectors the IVF index's floats take 1.5 GB of RAM in every process that searches or
    # writes; PQ takes ~75 MB, shared through the page cache. Below it the floats are
    # affordable and search needs no database reads (PQ re-scores its candidates exactly from
    # the stored vectors) and no minutes-long codebook training.
    vector_compress_above: int = Field(
        default=1_000_000, ge=1_000,
        description="Above this many vectors the index is compressed (IVF-PQ, <100 bytes a "
        "vector, memory-mapped; scores stay exact).",
    )
    search_max_candidates: int = Field(
        default=50_000, ge=100,
        description="At most this many semantic candidates per query (beyond it `total` "
        "counts only these).",
    )

    # Serving
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)

    # --- Captioning models and their runtimes (issue 3: im2txt, BLIP, Moondream, HTTP) ---------
    # Decoding. `None` means "the model's own default" (im2txt: greedy, as LibrePhotos;
    # BLIP: 3 beams, at least 5 tokens), so a caption only changes when someone asks for it.
    caption_beams: int | None = Field(
        default=None, ge=1, le=16, description="Beam count for im2txt/BLIP; 1 is greedy."
    )
    caption_max_length: int = Field(
        default=20, ge=1, le=256, description="Most tokens a caption may have (after any prompt)."
    )
    caption_min_length: int | None = Field(
        default=None, ge=0, le=256, description="Fewest tokens before the model may stop."
    )
    caption_prompt: str | None = Field(
        default=None,
        description="BLIP: text the caption must start with (e.g. 'a photograph of'), "
        "stripped from the result.",
    )
    llm_prompt: str = Field(
        default=(
            "Describe this photo in one sentence for a photo search engine: the main subjects, "
            "what they are doing and the setting."
        ),
        description="Instruction given to vision LLMs (Moondream, hf-vlm, Ollama, "
        "OpenAI-compatible, Anthropic).",
    )
    llm_max_tokens: int = Field(default=96, ge=8, le=4096)
    torch_dtype: Literal["auto", "fp32", "bf16"] = Field(
        default="auto", description="auto = bf16 where the CPU computes it natively, else fp32."
    )
    # Lifecycle of loaded models.
    model_idle_ttl: float = Field(
        default=300.0, ge=0.0, description="Seconds a loaded model may sit unused; 0 keeps it."
    )
    # HTTP captioners. The API key only ever comes from the environment.
    captioner_timeout: float = Field(default=120.0, gt=0.0, description="Seconds per request.")
    captioner_retries: int = Field(
        default=2, ge=0, le=10, description="Retries after the first try, with backoff."
    )
    captioner_retry_backoff: float = Field(
        default=1.0, ge=0.0, description="Seconds before the first retry; doubles each time."
    )
    captioner_image_max_side: int = Field(
        default=1024, ge=64, le=8192, description="Images are sent as JPEG at most this large."
    )
    openai_api_key: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("CAPDEX_OPENAI_API_KEY", "OPENAI_API_KEY"),
        description="Bearer token for OpenAI-compatible endpoints (env only).",
    )
    # --- More captioners (issue 9: ViT-GPT2, BLIP-2, any transformers VLM, Claude) -------------
    # ViT-GPT2 and BLIP-2 use the decoding settings above (CAPTION_*); hf-vlm and anthropic use
    # LLM_PROMPT / LLM_MAX_TOKENS. hf-vlm's model is CAPTIONER_MODEL (a hub id) or MODEL_PATH.
    anthropic_api_key: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("CAPDEX_ANTHROPIC_API_KEY", "ANTHROPIC_API_KEY"),
        description="x-api-key for Anthropic's Messages API (env only).",
    )
    # HTTP hardening and index jobs over HTTP (the web page). Lists in the environment are
    # separated by os.pathsep (roots) or commas (origins), or written as JSON lists.
    photo_roots: Annotated[list[Path], NoDecode] = Field(
        default_factory=list,
        description="Folders that POST /api/index may index; none means indexing over HTTP is off.",
    )
    api_key: SecretStr | None = Field(
        default=None, description="When set, every request but /healthz and the page shell "
        "(/, /static/) needs header X-API-Key."
    )
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Origins allowed to call the API from a browser (CORS)."
    )
    max_request_bytes: int = Field(
        default=1_048_576, ge=1024, description="Larger request bodies are refused with 413."
    )

    # --- Text in photos (issue 10: OCR) ---------------------------------------------------------
    # OCR runs while indexing unless turned off (`--no-ocr`); fragments below the confidence
    # or with fewer than two letters/digits are dropped. Up to OCR_EMBED_WORDS words of a photo's
    # text are embedded with its caption; OCR_MAX_SIDE is the longest side OCR sees (a photo OCR
    # reads is decoded once at this size, and the caption's view is reduced from it).
    ocr: bool = True
    ocr_min_confidence: float = Field(default=0.6, ge=0.0, le=1.0)
    ocr_embed_words: int = Field(default=40, ge=0, le=500)
    ocr_max_side: int = Field(default=2000, ge=256, le=8192)

    # --- People (issue 14: faces) ----------------------------------------------------------------
    # Off by default (`--faces` or CAPDEX_FACES=true): needs `pip install 'capdex[faces]'`.
    faces: bool = False

    # --- Where and when (issue 15) ---------------------------------------------------------------
    # The place stage names where photos with EXIF GPS were taken (offline, GeoNames data) and
    # adds time words (year, month, season, part of day); `--no-place` turns it off for a run.
    place: bool = True

    # --- Spark (issue 8: `capdex spark-index` on local[N] or a cluster) --------------------------
    # capdex's own code is shipped to the executors with the job; their Python must have the
    # captioner's and embedder's dependencies (pip install 'capdex[...]' there) and the driver's
    # Python version. On a cluster, photos must be on storage every executor reads under the
    # same paths.
    spark_master: str | None = Field(
        default=None, description="Spark master URL (local[N], spark://host:7077); default local[*]."
    )
    spark_python: str | None = Field(
        default=None,
        description="Python executable on the executors; default: this Python on local masters, "
        "Spark's own (PYSPARK_PYTHON or python3) on clusters.",
    )
    spark_executor_data_dir: Path | None = Field(
        default=None,
        description="Data dir the executors use, for models only (<dir>/models: weights caches, "
        "models put there with `capdex models download NAME --data-dir <dir>`); default: this data dir on "
        "local masters, <executor temp dir>/capdex-spark on clusters.",
    )
    spark_executor_memory: str | None = Field(
        default=None, description="spark.executor.memory, e.g. 2g (the captioner lives there)."
    )
    spark_executor_cores: int | None = Field(
        default=None, ge=1, description="spark.executor.cores: tasks one executor runs at once."
    )

    # --- Ask your photos (issue 16): an LLM answers from the photos search retrieves -----------
    # Reached over HTTP in a protocol capdex already speaks for captioning. It is configured
    # when LLM_ENDPOINT is set, or LLM names a protocol with a known endpoint (ollama: local
    # Ollama; openai: api.openai.com; anthropic: api.anthropic.com). Otherwise ask is
    # unavailable (HTTP 503, exit 2) and says to set CAPDEX_LLM_ENDPOINT.
    llm: Literal["openai", "ollama", "anthropic"] | None = Field(
        default=None, description="Protocol of the ask LLM: openai (/v1/chat/completions, also "
        "llama.cpp and vLLM servers), ollama (/api/chat) or anthropic (/v1/messages); default "
        "openai when only an endpoint is set.",
    )
    llm_endpoint: str | None = Field(
        default=None, description="Base URL of the ask LLM, e.g. http://127.0.0.1:11434 (Ollama) "
        "or http://127.0.0.1:8080 (llama.cpp's server).",
    )
    llm_model: str | None = Field(
        default=None, description="Model the ask LLM should use (default: the protocol's).",
    )
    llm_api_key: SecretStr | None = Field(
        default=None, description="Key for the ask LLM (Bearer for openai, x-api-key for "
        "anthropic); default: OPENAI_API_KEY / ANTHROPIC_API_KEY as the captioners read them.",
    )
    llm_timeout: float = Field(
        default=300.0, gt=0.0, description="Seconds the ask LLM may take to answer, in all."
    )
    llm_retries: int = Field(
        default=1, ge=0, le=10, description="Retries of the ask LLM before it answers, with "
        "backoff (CAPTIONER_RETRY_BACKOFF).",
    )
    ask_k: int = Field(default=8, ge=1, le=50, description="Photos put before the LLM.")
    ask_max_tokens: int = Field(
        default=512, ge=16, le=8192, description="Most tokens an answer may have (ask, and "
        "questions about one photo).",
    )
    ask_max_answer_chars: int = Field(
        default=6000, ge=100, le=100_000, description="Longer answers are cut here.",
    )
    ask_text_chars: int = Field(
        default=600, ge=0, le=10_000, description="Most characters of a photo's OCR text put "
        "before the LLM.",
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _CaptionerEnvironment(settings_cls), dotenv_settings,
                file_secret_settings)

    @field_validator("llm", "llm_endpoint", "llm_model", "llm_api_key", mode="before")
    @classmethod
    def _blank_llm_is_unset(cls, value: object) -> object:
        # CAPDEX_LLM= in a compose file or .env means "none", as an unset variable does
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("data_dir", mode="before")
    @classmethod
    def _expand(cls, value: object) -> object:
        return Path(value).expanduser() if isinstance(value, (str, Path)) else value

    @field_validator("photo_roots", "cors_origins", mode="before")
    @classmethod
    def _split_list(cls, value: object, info: ValidationInfo) -> object:
        if not isinstance(value, str):
            return value
        value = value.strip()
        if value.startswith("["):
            import json

            return json.loads(value)
        separator = os.pathsep if info.field_name == "photo_roots" else ","
        return [part.strip() for part in value.split(separator) if part.strip()]

    @field_validator("photo_roots", mode="after")
    @classmethod
    def _absolute_roots(cls, value: list[Path]) -> list[Path]:
        return [Path(os.path.abspath(root.expanduser())) for root in value]

    @field_validator("api_key", mode="before")
    @classmethod
    def _blank_key_is_none(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @property
    def db_url(self) -> str:
        """The database URL in force: explicit, or SQLite inside the data dir."""
        return self.database_url or f"sqlite:///{self.data_dir / 'capdex.db'}"

    @property
    def index_path(self) -> Path:
        return self.data_dir / "vectors.faiss"

    @property
    def models_dir(self) -> Path:
        return self.data_dir / "models"

    @property
    def embedder_cache_dir(self) -> Path:
        """Where the embedder's ONNX export lives (see capdex/embedder.py): a cache every data
        dir shares, since it is made from the model's files alone (a new library exported it
        again, ~8 s of CPU competing with the captioner's start-up)."""
        return self.embedder_onnx_dir or default_cache_dir() / "embedders"
