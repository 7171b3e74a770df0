# Sembang's container image: `docker build -t sembang .` (used by deploy/compose.yaml and the
# Kubernetes manifests in deploy/k8s). Two stages: a Debian build with the OCR and Kafka
# toolchain, then a slim runtime with only the shared libraries the binary links
# (libtesseract, leptonica, three OpenCV modules, curl, OpenSSL) and Tesseract's language data.
FROM rust:1-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential cmake pkg-config clang libclang-dev \
      libssl-dev libcurl4-openssl-dev libtesseract-dev libleptonica-dev libopencv-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin sembang \
 && cp target/release/sembang /usr/local/bin/sembang

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates libcurl4 libssl3 \
      libtesseract5 liblept5 tesseract-ocr-eng tesseract-ocr-msa \
      libopencv-core406 libopencv-imgproc406 libopencv-imgcodecs406 \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --uid 65532 --user-group --home-dir /var/lib/sembang --create-home sembang
COPY --from=build /usr/local/bin/sembang /usr/local/bin/sembang
USER 65532:65532
WORKDIR /var/lib/sembang
# 8080: webhooks and tracking links (public); 9090: admin API, /metrics, /healthz (private).
EXPOSE 8080 9090
ENTRYPOINT ["/usr/local/bin/sembang"]
CMD ["run"]
