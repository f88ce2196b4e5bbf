# Rill build, run and test entry points. See README.md.
GO        ?= go
PLUGINS   := $(filter-out internal,$(notdir $(wildcard plugins/*)))
BIN       := bin
GOFLAGS   ?=
TEST_TIMEOUT ?= 30m

.PHONY: all build run test deps build-deps proto fuzz bench bench-quick console-vendor clean $(BIN)/rill

all: build

build: $(BIN)/rill $(addprefix $(BIN)/plugins/,$(PLUGINS))

# build-deps installs the C libraries cgo links (internal/avcodec: Debian's
# libavcodec, libavutil, libswresample, libopus) when they are missing.
build-deps:
	@./scripts/deps.sh build

$(BIN)/rill: | build-deps
	$(GO) build $(GOFLAGS) -o $@ ./core

$(BIN)/plugins/%: FORCE | build-deps
	$(GO) build $(GOFLAGS) -o $@ ./plugins/$*

FORCE:

run: build
	./$(BIN)/rill -c conf.hcl

# deps installs what the tests need when it is missing (as root through
# apt-get); without root a missing tool is an error, never a silent skip.
deps:
	@./scripts/deps.sh

EXAMPLES  := $(patsubst %/go.mod,%,$(wildcard examples/*/go.mod))

test: deps build
	$(GO) vet ./...
	@# the out-of-tree example plugins: modules of their own, against sdk/ only
	@for m in $(EXAMPLES); do echo "== $$m"; (cd $$m && $(GO) vet ./... && $(GO) test -count=1 ./...) || exit 1; done
	$(GO) test -count=1 -timeout $(TEST_TIMEOUT) ./...
	$(GO) test -count=1 -race -timeout $(TEST_TIMEOUT) ./sdk/... ./core/...

proto:
	@command -v protoc >/dev/null || { echo "protoc missing: apt-get install -y protobuf-compiler"; exit 1; }
	$(GO) install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
	$(GO) install google.golang.org/grpc/cmd/protoc-gen-go-grpc@v1.5.1
	PATH="$$($(GO) env GOPATH)/bin:$$PATH" protoc -I sdk/proto \
		--go_out=. --go_opt=module=github.com/rill-media/rill \
		--go-grpc_out=. --go-grpc_opt=module=github.com/rill-media/rill \
		sdk/proto/rill/plugin/v1/plugin.proto

# fuzz runs every fuzz target for FUZZTIME each.
FUZZTIME ?= 20s
fuzz:
	@./scripts/fuzz.sh $(FUZZTIME)

# bench runs cmd/rill-bench against Rill (bin/rill with the rtmp and httpstream
# plugins, and webrtc for the webrtc rows), lalserver (built from the lal version in go.mod, see
# bench/tools.go) and the physical floor (bench/floor), one after the other
# on loopback, and writes docs/BENCHMARKS.md. bench-quick stops at 500
# players and keeps under 5 minutes. A plugin that does not build is left
# out, and the report says why its rows failed. BENCH_FLAGS adds flags
# (e.g. BENCH_FLAGS='-servers rill,lalserver -n 100,1000').
BENCH_FLAGS ?=
bench bench-quick: $(BIN)/rill
	$(GO) build $(GOFLAGS) -o $(BIN)/plugins/rtmp ./plugins/rtmp || rm -f $(BIN)/plugins/rtmp
	$(GO) build $(GOFLAGS) -o $(BIN)/plugins/httpstream ./plugins/httpstream || rm -f $(BIN)/plugins/httpstream
	$(GO) build $(GOFLAGS) -o $(BIN)/plugins/srt ./plugins/srt || rm -f $(BIN)/plugins/srt
	$(GO) build $(GOFLAGS) -o $(BIN)/plugins/webrtc ./plugins/webrtc || rm -f $(BIN)/plugins/webrtc
	$(GO) build $(GOFLAGS) -o $(BIN)/plugins/rtsp ./plugins/rtsp || rm -f $(BIN)/plugins/rtsp
	$(GO) build $(GOFLAGS) -o $(BIN)/rill-bench ./cmd/rill-bench
	$(GO) build $(GOFLAGS) -o $(BIN)/bench-floor ./bench/floor
	$(GO) build $(GOFLAGS) -o $(BIN)/lalserver github.com/q191201771/lal/app/lalserver
	@mkdir -p docs
	ulimit -n 65536 2>/dev/null || ulimit -n $$(ulimit -Hn); \
	./$(BIN)/rill-bench suite $(if $(filter bench-quick,$@),-quick) -command 'make $@' -out docs/BENCHMARKS.md $(BENCH_FLAGS)

# console-vendor refreshes the players the console embeds from npm (pinned).
MPEGTS_VERSION ?= 1.8.2
HLSJS_VERSION  ?= 1.7.4
console-vendor:
	@command -v npm >/dev/null || { echo "npm missing: apt-get install -y npm"; exit 1; }
	rm -rf .npm-vendor && mkdir -p .npm-vendor
	cd .npm-vendor && npm pack --silent mpegts.js@$(MPEGTS_VERSION) hls.js@$(HLSJS_VERSION) >/dev/null
	cd .npm-vendor && mkdir m h && tar xzf mpegts.js-$(MPEGTS_VERSION).tgz -C m && tar xzf hls.js-$(HLSJS_VERSION).tgz -C h
	cp .npm-vendor/m/package/dist/mpegts.js core/internal/console/assets/vendor/mpegts.js
	cp .npm-vendor/m/package/LICENSE core/internal/console/assets/vendor/mpegts.js.LICENSE
	cp .npm-vendor/h/package/dist/hls.min.js core/internal/console/assets/vendor/hls.min.js
	cp .npm-vendor/h/package/LICENSE core/internal/console/assets/vendor/hls.js.LICENSE
	printf 'mpegts.js %s (npm, dist/mpegts.js) Apache-2.0\nhls.js %s (npm, dist/hls.min.js) Apache-2.0\nRefresh with `make console-vendor`.\n' $(MPEGTS_VERSION) $(HLSJS_VERSION) > core/internal/console/assets/vendor/VERSIONS
	rm -rf .npm-vendor

clean:
	rm -rf $(BIN)
