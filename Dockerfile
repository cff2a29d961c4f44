# capdex API image. Photos are mounted read-only at /photos; the data dir is a volume at /data.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    CAPDEX_DATA_DIR=/data CAPDEX_HOST=0.0.0.0 CAPDEX_PORT=8000
# CPU builds of torch keep the image small; override for a GPU host.
ARG TORCH_SPEC="torch torchvision --index-url https://download.pytorch.org/whl/cpu"

WORKDIR /app
# OCR (on by default) uses opencv-python, which needs libGL and glib from the system.
RUN apt-get update && apt-get install -y --no-install-recommends libgl1 libglib2.0-0 \
    && rm -rf /var/lib/apt/lists/*
RUN pip install ${TORCH_SPEC}
COPY pyproject.toml README.md ./
COPY capdex ./capdex
# http: the ollama/openai/anthropic captioners and the ask LLM talk to their servers with httpx;
# faces: --faces (dlib and its models ship as wheels).
RUN pip install '.[postgres,http,faces]'

RUN useradd --create-home capdex && mkdir -p /data && chown capdex /data
USER capdex
VOLUME ["/data"]
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz')"
# Listening on all interfaces needs CAPDEX_API_KEY (serve refuses otherwise, unless --insecure).
CMD ["sh", "-c", "capdex index /photos && exec capdex serve --host 0.0.0.0 --port 8000 --photo-root /photos"]
