package rpc

import (
	"strings"

	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	papayv1 "github.com/papayd/papayd/gen/papay/v1"
	"github.com/papayd/papayd/internal/service"
)

// scopes is the one table of the scope each RPC needs, by full method
// name. A method missing here is refused to every key (a test walks the
// registered services so that a new RPC cannot be forgotten).
var scopes = map[string]service.Scope{
	papayv1.AgreementService_CreatePresignSession_FullMethodName: service.ScopeAgreementsWrite,
	papayv1.AgreementService_GetAgreement_FullMethodName:         service.ScopeAgreementsRead,
	papayv1.AgreementService_ListAgreements_FullMethodName:       service.ScopeAgreementsRead,
	papayv1.AgreementService_TerminateAgreement_FullMethodName:   service.ScopeAgreementsWrite,
	papayv1.ChargeService_CreateCharge_FullMethodName:            service.ScopeChargesWrite,
	papayv1.ChargeService_GetCharge_FullMethodName:               service.ScopeChargesRead,
	papayv1.ChargeService_ListCharges_FullMethodName:             service.ScopeChargesRead,
	papayv1.ChargeService_CloseCharge_FullMethodName:             service.ScopeChargesWrite,
	papayv1.RefundService_CreateRefund_FullMethodName:            service.ScopeRefundsWrite,
	papayv1.RefundService_GetRefund_FullMethodName:               service.ScopeRefundsRead,
	papayv1.RefundService_ListRefunds_FullMethodName:             service.ScopeRefundsRead,
	papayv1.AuditService_ListAuditEntries_FullMethodName:         service.ScopeAdmin,
	papayv1.EventService_ListEvents_FullMethodName:               service.ScopeEventsRead,
	papayv1.EventService_GetEvent_FullMethodName:                 service.ScopeEventsRead,
	papayv1.EventService_StreamEvents_FullMethodName:             service.ScopeEventsRead,
	papayv1.WebhookService_CreateWebhookEndpoint_FullMethodName:  service.ScopeWebhooksWrite,
	papayv1.WebhookService_ListWebhookEndpoints_FullMethodName:   service.ScopeWebhooksWrite,
	papayv1.WebhookService_GetWebhookEndpoint_FullMethodName:     service.ScopeWebhooksWrite,
	papayv1.WebhookService_DeleteWebhookEndpoint_FullMethodName:  service.ScopeWebhooksWrite,
	papayv1.WebhookService_EnableWebhookEndpoint_FullMethodName:  service.ScopeWebhooksWrite,
	papayv1.WebhookService_ListWebhookDeliveries_FullMethodName:  service.ScopeWebhooksWrite,
	papayv1.WebhookService_RedeliverEvent_FullMethodName:         service.ScopeWebhooksWrite,
}

// publicServices need no key: health checks (load balancers, probes) and
// server reflection (it describes the API, it reads no record).
var publicServices = []string{
	healthpb.Health_ServiceDesc.ServiceName,
	"grpc.reflection.v1.ServerReflection",
	"grpc.reflection.v1alpha.ServerReflection",
}

// isPublic reports whether fullMethod ("/pkg.Service/Method") belongs to
// a service that needs no key.
func isPublic(fullMethod string) bool {
	svc, _, ok := strings.Cut(strings.TrimPrefix(fullMethod, "/"), "/")
	if !ok {
		return false
	}
	for _, p := range publicServices {
		if svc == p {
			return true
		}
	}
	return false
}

// ScopeOf returns the scope fullMethod needs; ok is false for a method
// without one (public, or unknown).
func ScopeOf(fullMethod string) (s service.Scope, ok bool) {
	s, ok = scopes[fullMethod]
	return s, ok
}
