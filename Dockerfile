# The ledger's services (consumer, projector, scheduler, HTTP API) for the production-shaped path in
# docker-compose.yml. Versions are pinned by constraints.txt (`make constraints`, from the tested venv).
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md constraints.txt ./
COPY ledger ledger
COPY projections projections
COPY consumers consumers
COPY schemas schemas
COPY app app
# A fixed uid, so secret files on the host can be made readable to it (see docker-compose.yml).
RUN pip install --no-cache-dir --constraint constraints.txt . && useradd --system --uid 10001 ledger
USER ledger
ENTRYPOINT ["consent-ledger"]
CMD ["--help"]
