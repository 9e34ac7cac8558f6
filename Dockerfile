# mimo-bench with the CUDA backend, CUPTI tracing and gnuplot reports.
#   docker build --build-arg MIMO_GIT_COMMIT=$(git rev-parse --short=12 HEAD) -t mimo-bench .
#   (the context leaves .git out: the argument is how results files name the commit; else "unknown")
#   docker run --gpus all --rm -v "$PWD/out:/out" mimo-bench run --preset small --backend cuda --matrix --out /out/r.json
#   docker run --rm -v "$PWD/out:/out" mimo-bench report /out/r.json --out /out/report
FROM nvidia/cuda:13.0.0-devel-ubuntu24.04

# The distribution's packages only (scripts/ensure-deps.sh checks the same list); CUPTI comes with the
# CUDA toolkit (cuda-cupti-dev is named so that a slimmer base still has it).
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        build-essential cmake pkg-config git ca-certificates \
        libjansson-dev libcriterion-dev libpcre2-dev libutf8proc-dev gnuplot-nox \
        cuda-cupti-dev-13-0 \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /opt/mimo-bench
COPY . .
ARG MIMO_GIT_COMMIT=
ENV MIMO_GIT_COMMIT=${MIMO_GIT_COMMIT}
# No GPU at build time: kernels compile for sm_90a all the same; tests that need a device run on
# the GPU runner (`make test` there), so the image build does not run them.
RUN cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DMIMO_CUDA=ON \
 && cmake --build build -j"$(nproc)" --target mimo-bench \
 && install -m 0755 build/bin/mimo-bench /usr/local/bin/mimo-bench

# validate finds results/schema.json through MIMO_SOURCE_DIR.
ENV MIMO_SOURCE_DIR=/opt/mimo-bench
WORKDIR /work
ENTRYPOINT ["mimo-bench"]
CMD ["--help"]
