// Package web is papayd's HTTP port: the grpc-gateway JSON facade (which
// calls papayd's services in process through the gRPC server's
// interceptors, see rpc.Local, so REST callers get the same metrics, logs
// and errors), GET /v1/health, the WeChat Pay callback handler, /healthz
// (liveness), /readyz (the store commits a write) and /openapi.json. The
// REST API, the sandbox control API and /openapi.json sit behind a Guard
// (Host, Origin/CORS, JSON bodies of at most 1 MiB).
package web
