# spanprof: the two commands a newcomer needs, plus demo and bench.
#   make run    install missing packages (apt-get, when root), build the binary only, start it
#               with the embedded default (ARGS="..." passes arguments, e.g. ARGS=--help)
#   make build  the same packages and the binary only (what the Docker build stage runs)
#   make test   install the test tools too (node, Go, clang), build everything, run every test;
#               ends with `N passed, N failed`
#   make demo   the join end to end with a Go demo service, no Datadog account needed
#   make bench  benchmarks (prints a table; see bench/RESULTS.md)
#   make fuzz   every fuzz target under libFuzzer, FUZZ_SECONDS (60) each; grows tests/fuzz/corpus
.PHONY: all build run test demo bench fuzz clean deps

all: build

deps:
	@bash scripts/deps.sh build

# meson's own output (errors included) is shown; the tests and fuzzers are
# built by `make test`, not here.
build: deps
	@[ -f build/build.ninja ] || meson setup build
	@ninja -C build spanprof

run: build
	./build/spanprof $(ARGS)

test:
	@bash scripts/test.sh

demo: build
	@bash examples/demo.sh

bench:
	@bash bench/run.sh

fuzz:
	@bash scripts/fuzz.sh

clean:
	rm -rf build build-asan build-bench build-fuzz
