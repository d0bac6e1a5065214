// Package metrics is papayd's Prometheus instrumentation: requests by RPC
// and code, WeChat Pay calls by endpoint and outcome, notifications by event
// type and outcome, the reconciler's backlog and actions, and records by
// state. Transports and the wiring call it; the domain never does.
package metrics
