# Offline, pinned code generation for api/papay/v1 (see buf.yaml, buf.gen.yaml),
# and staticcheck.
# Tools come from the separate tools/ module and are built into ./bin.

SHELL := /bin/bash

BIN := $(CURDIR)/bin
# protoc-gen-go is installed outside tools/ (buf v1.75.0 forces a newer
# google.golang.org/protobuf there); keep this equal to the root go.mod.
PROTOC_GEN_GO_VERSION := v1.36.12

TOOLS := $(BIN)/buf $(BIN)/protoc-gen-go $(BIN)/protoc-gen-go-grpc \
	$(BIN)/protoc-gen-grpc-gateway $(BIN)/protoc-gen-openapiv2

# Tool builds must not see a go.work or pick the root module.
GO_TOOLS_ENV := GOWORK=off GOFLAGS="$$GOFLAGS -mod=readonly"
BUF := PATH="$(BIN):$$PATH" $(BIN)/buf

.PHONY: tools generate lint check-generated staticcheck

tools: $(TOOLS)

$(BIN)/buf: tools/go.mod tools/go.sum
	cd tools && $(GO_TOOLS_ENV) go build -o $(BIN)/ github.com/bufbuild/buf/cmd/buf
	@touch $@

$(BIN)/protoc-gen-go-grpc: tools/go.mod tools/go.sum
	cd tools && $(GO_TOOLS_ENV) go build -o $(BIN)/ google.golang.org/grpc/cmd/protoc-gen-go-grpc
	@touch $@

$(BIN)/protoc-gen-grpc-gateway: tools/go.mod tools/go.sum
	cd tools && $(GO_TOOLS_ENV) go build -o $(BIN)/ github.com/grpc-ecosystem/grpc-gateway/v2/protoc-gen-grpc-gateway
	@touch $@

$(BIN)/protoc-gen-openapiv2: tools/go.mod tools/go.sum
	cd tools && $(GO_TOOLS_ENV) go build -o $(BIN)/ github.com/grpc-ecosystem/grpc-gateway/v2/protoc-gen-openapiv2
	@touch $@

$(BIN)/staticcheck: tools/go.mod tools/go.sum
	cd tools && $(GO_TOOLS_ENV) go build -o $(BIN)/ honnef.co/go/tools/cmd/staticcheck
	@touch $@

$(BIN)/protoc-gen-go: Makefile
	cd tools && GOWORK=off GOBIN=$(BIN) go install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO_VERSION)
	@touch $@

# buf writes gen/openapi/papay.swagger.json; openapigen then merges the
# paths that are not RPCs and the error schema into it (a JSON merge
# patch), so that file is exactly what papayd serves at /openapi.json.
generate: $(TOOLS)
	$(BUF) generate
	go run ./internal/openapigen -patch api/papay/v1/papay_openapi_patch.json gen/openapi/papay.swagger.json

# staticcheck ./... over the main module (its checks and version: tools/go.mod).
staticcheck: $(BIN)/staticcheck
	$(BIN)/staticcheck ./...

lint: $(BIN)/buf
	$(BUF) lint

check-generated: generate
	@if [ -n "$$(git status --porcelain -- gen)" ]; then \
		echo "error: gen/ is stale: run 'make generate' and commit the result:" >&2; \
		git status --porcelain -- gen >&2; \
		exit 1; \
	fi
	@echo "gen/ is up to date"
