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

# The TypeScript client (clients/typescript): protoc-gen-es comes from its
# node_modules, installed by npm ci exactly as its package-lock.json pins it.
TS_CLIENT := clients/typescript
PROTOC_GEN_ES := $(TS_CLIENT)/node_modules/.bin/protoc-gen-es

# Tool builds must not see a go.work or pick the root module.
GO_TOOLS_ENV := GOWORK=off GOFLAGS="$$GOFLAGS -mod=readonly"
BUF := PATH="$(BIN):$$PATH" $(BIN)/buf

.PHONY: tools generate lint check-generated staticcheck breaking

tools: $(TOOLS) $(PROTOC_GEN_ES)

$(PROTOC_GEN_ES): $(TS_CLIENT)/package.json $(TS_CLIENT)/package-lock.json
	cd $(TS_CLIENT) && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

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
generate: $(TOOLS) $(PROTOC_GEN_ES)
	$(BUF) generate
	go run ./internal/openapigen -patch api/papay/v1/papay_openapi_patch.json gen/openapi/papay.swagger.json

# staticcheck ./... over the main module (its checks and version: tools/go.mod).
staticcheck: $(BIN)/staticcheck
	$(BIN)/staticcheck ./...

lint: $(BIN)/buf
	$(BUF) lint

GENERATED := gen $(TS_CLIENT)/src/gen

check-generated: generate
	@if [ -n "$$(git status --porcelain -- $(GENERATED))" ]; then \
		echo "error: generated code is stale: run 'make generate' and commit the result:" >&2; \
		git status --porcelain -- $(GENERATED) >&2; \
		exit 1; \
	fi
	@echo "$(GENERATED) up to date"

# buf breaking (the WIRE_JSON rules of buf.yaml) of api/ against the parent
# commit (HEAD~1, the first parent of a merge). A clone without the parent
# (shallow, or the first commit) skips the check and says so.
breaking: $(BIN)/buf
	@if parent=$$(git rev-parse --verify --quiet 'HEAD~1^{commit}'); then \
		echo "buf breaking against $$parent (HEAD~1)"; \
		$(BUF) breaking --against ".git#ref=$$parent"; \
	else \
		echo "buf breaking: skipped: HEAD has no parent commit in this clone (shallow clone or first commit)"; \
	fi
