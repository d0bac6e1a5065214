//go:build tools

// Package tools pins the code-generation tools and staticcheck, built by
// the root Makefile (make tools, make staticcheck). It is a separate module so that the root go.mod does not gain
// these dependencies.
//
// protoc-gen-go is deliberately NOT pinned here: buf v1.75.0 requires
// google.golang.org/protobuf v1.36.13-0.20261016172727-e9ee2a76ab8e, so by
// minimal version selection this module cannot hold protobuf at v1.36.12.
// The Makefile installs protoc-gen-go@$(PROTOC_GEN_GO_VERSION) (v1.36.12,
// the runtime version of the root module) on its own instead.
package tools

import (
	_ "github.com/bufbuild/buf/cmd/buf"
	_ "github.com/grpc-ecosystem/grpc-gateway/v2/protoc-gen-grpc-gateway"
	_ "github.com/grpc-ecosystem/grpc-gateway/v2/protoc-gen-openapiv2"
	_ "google.golang.org/grpc/cmd/protoc-gen-go-grpc"
	_ "honnef.co/go/tools/cmd/staticcheck"
)
