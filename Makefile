# Thin wrapper over CMake. `make run` builds and runs the main job on the built-in default;
# `make test` builds and runs every test. Both install missing distribution packages when run
# as root, or stop with the exact install command.
BUILD      ?= build
ASAN_BUILD ?= build-asan
JOBS       ?= $(shell nproc 2>/dev/null || echo 2)
CMAKE_ARGS ?=
BIN         = $(BUILD)/bin/mimo-bench

.PHONY: all deps configure build run test asan-test fuzz clean

all: build

deps:
	@scripts/ensure-deps.sh

$(BUILD)/CMakeCache.txt: | deps
	cmake -S . -B $(BUILD) $(CMAKE_ARGS)

configure: $(BUILD)/CMakeCache.txt

build: deps configure
	cmake --build $(BUILD) -j $(JOBS)

# The main job: the built-in suites through the ablation matrix on the built-in model
# (`small` on a GPU, `tiny` on the CPU), then the report.
run: build
	scripts/run-default.sh $(BIN)

test: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

# The tests again under AddressSanitizer + UndefinedBehaviorSanitizer (CUDA off: the sanitizers
# do not see device memory; kernels are checked with compute-sanitizer on the GPU machine).
asan-test: deps
	cmake -S . -B $(ASAN_BUILD) -DMIMO_SANITIZE=ON -DMIMO_CUDA=OFF $(CMAKE_ARGS)
	cmake --build $(ASAN_BUILD) -j $(JOBS)
	cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 ctest --output-on-failure -j $(JOBS)

# A bounded libFuzzer run of the safetensors header parser (see fuzz/README.md).
fuzz: deps
	CC=clang cmake -S . -B build-fuzz -DMIMO_FUZZ=ON -DMIMO_CUDA=OFF $(CMAKE_ARGS)
	cmake --build build-fuzz --target fuzz_safetensors_header -j $(JOBS)
	mkdir -p fuzz/corpus-run
	build-fuzz/fuzz/fuzz_safetensors_header -max_total_time=60 -max_len=4096 -dict=fuzz/safetensors.dict fuzz/corpus-run fuzz/corpus

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) build-fuzz
