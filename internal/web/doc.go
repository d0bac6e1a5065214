// Package web is papayd's HTTP port: the grpc-gateway JSON facade (which
// dials papayd's own gRPC server, so interceptors run for REST callers
// too), the WeChat Pay callback handler, /healthz and /openapi.json.
package web
