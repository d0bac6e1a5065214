// Package rpc is the gRPC transport: the AgreementService and ChargeService
// handlers, the conversions between protos and domain types, and the one
// mapping from domain errors to gRPC statuses, applied by an interceptor.
// The JSON gateway dials this server, so REST callers get the same
// handlers, validation and errors.
package rpc
