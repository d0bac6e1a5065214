module github.com/papayd/papayd/tools

go 1.26.7

require (
	github.com/bufbuild/buf v1.75.0
	github.com/grpc-ecosystem/grpc-gateway/v2 v2.33.0
	google.golang.org/grpc/cmd/protoc-gen-go-grpc v1.6.2
)

// Not a direct pin: the version buf v1.75.0 requires (see tools.go for why
// protoc-gen-go is installed separately at v1.36.12).
require google.golang.org/protobuf v1.36.13-0.20261016172727-e9ee2a76ab8e // indirect
