# Rill build, run and test entry points. See README.md.
GO        ?= go
PLUGINS   := $(filter-out internal,$(notdir $(wildcard plugins/*)))
BIN       := bin
GOFLAGS   ?=
TEST_TIMEOUT ?= 15m

.PHONY: all build run test test-unit test-e2e deps proto fuzz bench bench-quick clean $(BIN)/rill

all: build

build: $(BIN)/rill $(addprefix $(BIN)/plugins/,$(PLUGINS))

$(BIN)/rill:
	$(GO) build $(GOFLAGS) -o $@ ./core

$(BIN)/plugins/%: FORCE
	$(GO) build $(GOFLAGS) -o $@ ./plugins/$*

FORCE:

run: build
	./$(BIN)/rill -c conf.hcl

# deps installs what the tests need when it is missing (as root through
# apt-get); without root a missing tool is an error, never a silent skip.
deps:
	@./scripts/deps.sh

test: deps build
	$(GO) vet ./...
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

clean:
	rm -rf $(BIN)
