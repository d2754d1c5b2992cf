FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY firewarden firewarden
COPY devices devices
COPY ingest ingest
COPY alerts alerts
COPY dashboard_api dashboard_api
COPY simulators simulators
RUN pip install --no-cache-dir . && useradd --system --home /var/lib/firewarden firewarden \
    && mkdir -p /var/lib/firewarden && chown firewarden /var/lib/firewarden
USER firewarden
EXPOSE 8080
CMD ["firewarden", "up"]
