// Package app wires papayd: configuration, the SQLite store, the WeChat Pay
// client (or, in sandbox mode, the built-in simulator), the domain service,
// the gRPC server and the HTTP port, and their ordered shutdown. main and
// the end-to-end tests both start papayd through it.
package app
