# The ledger's services (consumer, projector, scheduler, HTTP API) for the production-shaped path in docker-compose.yml.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY ledger ledger
COPY projections projections
COPY consumers consumers
COPY schemas schemas
COPY app app
RUN pip install --no-cache-dir . && useradd --system ledger
USER ledger
ENTRYPOINT ["consent-ledger"]
CMD ["--help"]
