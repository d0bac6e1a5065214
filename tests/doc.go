// Package tests holds papayd's end-to-end tests: each starts the real
// wiring (internal/app) in sandbox mode on 127.0.0.1:0 ports with a temporary
// data directory, and drives it with the generated gRPC client, plain
// HTTP/JSON, the sandbox's control API, and hand-made WeChat callbacks.
package tests
