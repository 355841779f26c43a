# clsm - top-level entry points. The real build is CMake; this file only
# chains dependency installation, configuration and the right build tree.
#
#   make demo    build, start clsmd with the simulators on SQLite, run the demo
#   make check   build with sanitizers and run every test (what CI runs)
#   make build   release build into build/ (build/clsmd, build/clsmctl)
#   make bench   benchmarks (see bench/README.md)
#   make fuzz    run the fuzz targets for FUZZ_SECONDS each
#   make format  apply clang-format
#   make deps    install the Debian packages (scripts/install-deps.sh)

BUILD_DIR    ?= build
CHECK_DIR    ?= build/check
FUZZ_SECONDS ?= 60
JOBS         ?= $(shell nproc 2>/dev/null || echo 2)

.PHONY: all deps build demo check bench fuzz format format-check clean

all: build

deps:
	scripts/install-deps.sh build

build: deps
	cmake -S . -B $(BUILD_DIR) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCLSM_TESTS=OFF
	cmake --build $(BUILD_DIR) -j $(JOBS)

demo: build
	scripts/demo.sh

# The check tree uses clang so that sanitizers and libFuzzer come from one
# compiler; the release tree above is built too, with -Werror, so that both
# compilers see the code warning-free.
check:
	scripts/install-deps.sh check
	cmake -S . -B $(BUILD_DIR) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCLSM_TESTS=OFF -DCLSM_WERROR=ON
	cmake --build $(BUILD_DIR) -j $(JOBS)
	CC=clang cmake -S . -B $(CHECK_DIR) -DCMAKE_BUILD_TYPE=Debug -DCLSM_SANITIZE=ON \
	    -DCLSM_WERROR=ON -DCLSM_FUZZ=ON
	cmake --build $(CHECK_DIR) -j $(JOBS)
	ctest --test-dir $(CHECK_DIR) --output-on-failure -j $(JOBS)

bench: build
	scripts/install-deps.sh bench
	bench/run.sh

fuzz:
	scripts/install-deps.sh check
	CC=clang cmake -S . -B $(CHECK_DIR) -DCMAKE_BUILD_TYPE=Debug -DCLSM_SANITIZE=ON -DCLSM_FUZZ=ON
	cmake --build $(CHECK_DIR) -j $(JOBS)
	scripts/fuzz.sh $(CHECK_DIR) $(FUZZ_SECONDS)

format:
	scripts/install-deps.sh check
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf $(BUILD_DIR) var
