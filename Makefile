# A thin wrapper around CMake. `make demo` and `make test` are all the set-up a fresh Debian
# machine needs: both install the missing Debian packages first (deploy/dev/install-deps.sh).
BUILD      ?= build
ASAN_BUILD ?= build-asan
JOBS       ?= $(shell nproc)
CMAKE_ARGS ?=

.PHONY: all deps build test test-asan demo bench fuzz format readme clean

all: build

deps:
	@./deploy/dev/install-deps.sh

build: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_ARGS) >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

# Every test (unit, integration, chaos), then the unit tests once more under ASan+UBSan.
test: build test-asan
	@cd $(BUILD) && ctest --output-on-failure -j $(JOBS) -L 'unit|integration|chaos'

test-asan: deps
	@cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DSANITIZE=address,undefined >/dev/null
	@cmake --build $(ASAN_BUILD) -j $(JOBS)
	@cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1 ctest --output-on-failure -j $(JOBS) -L unit

demo: build
	@./deploy/dev/demo.sh $(BUILD)/provisioner

# Three cold starts: their median is the throughput figure (runs here vary by 30% and more).
BENCH_ARGS ?= --repeat 3
bench: build
	@./tests/bench/run.sh $(BUILD) $(BENCH_ARGS)

fuzz: deps
	@./tests/fuzz/run.sh $(or $(FUZZ_SECONDS),60)

# The README's configuration reference is printed from the option table.
readme: build
	@./deploy/dev/readme-options.py $(BUILD)/provisioner

format:
	@clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	@rm -rf $(BUILD) $(ASAN_BUILD) build-fuzz
