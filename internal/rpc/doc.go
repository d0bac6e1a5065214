// Package rpc is the gRPC transport: the AgreementService, ChargeService,
// RefundService, EventService, WebhookService and AuditService handlers,
// the conversions between protos and domain types, and the one mapping
// from domain errors to gRPC statuses, applied by an interceptor. The JSON
// gateway calls the same handlers in process through the same interceptors
// (Local), so REST callers get the same validation, errors, logs and
// metrics without a second trip through gRPC.
package rpc
