# spanprof: the two commands a newcomer needs, plus demo and bench.
#   make run    install missing packages (apt-get, when root), build, start with the embedded default
#   make test   build and run every test; ends with `N passed, N failed`
#   make demo   the join end to end with a Go demo service, no Datadog account needed
#   make bench  benchmarks (prints a table; see bench/RESULTS.md)
.PHONY: all build run test demo bench clean deps

all: build

deps:
	@bash scripts/deps.sh build

build: deps
	@[ -f build/build.ninja ] || meson setup build >/dev/null
	@ninja -C build

run: build
	./build/spanprof $(ARGS)

test:
	@bash scripts/test.sh

demo: build
	@bash examples/demo.sh

bench:
	@bash bench/run.sh

clean:
	rm -rf build build-asan build-bench
