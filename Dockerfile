# One gateway process per container; run several behind a load balancer (see compose.yaml and the
# README's "Deployment" section). The config is mounted at /config/gateway.yaml.
FROM python:3.11-slim

RUN useradd --system --create-home --uid 10001 gateway
WORKDIR /app
COPY pyproject.toml README.md ./
COPY mcp_gateway ./mcp_gateway
COPY servers ./servers
RUN pip install --no-cache-dir . && rm -rf /app/build

USER gateway
EXPOSE 8765
# Health checks hit /healthz; SIGTERM drains in-flight calls (up to --shutdown-grace) before exiting.
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=5s --timeout=2s --retries=3 \
    CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8765/healthz', timeout=2).status != 200)"
ENTRYPOINT ["mcp-gateway", "serve", "/config/gateway.yaml", "--transport", "http", "--host", "0.0.0.0", "--port", "8765"]
CMD ["--shutdown-grace", "20"]
