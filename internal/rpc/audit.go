package rpc

import (
	"context"

	"google.golang.org/grpc"

	papayv1 "github.com/papayd/papayd/gen/papay/v1"
	"github.com/papayd/papayd/internal/service"
)

// AuditServer implements papayv1.AuditServiceServer over the service.
type AuditServer struct {
	papayv1.UnimplementedAuditServiceServer
	svc *service.Service
}

// NewAuditServer returns the audit trail's gRPC server.
func NewAuditServer(svc *service.Service) *AuditServer { return &AuditServer{svc: svc} }

// ListAuditEntries pages through the audit trail.
func (s *AuditServer) ListAuditEntries(ctx context.Context, req *papayv1.ListAuditEntriesRequest) (*papayv1.ListAuditEntriesResponse, error) {
	es, next, err := s.svc.ListAuditEntries(ctx, service.AuditFilter{
		Resource: req.GetResource(), KeyID: req.GetKeyId(), PageSize: int(req.GetPageSize()), PageToken: req.GetPageToken(),
	})
	if err != nil {
		return nil, err
	}
	resp := &papayv1.ListAuditEntriesResponse{NextPageToken: next}
	for _, e := range es {
		resp.Entries = append(resp.Entries, &papayv1.AuditEntry{
			Id: e.ID, Time: timeToProto(e.Time), KeyId: e.KeyID, KeyName: e.KeyName, Peer: e.Peer,
			Method: e.Method, Resource: e.Resource, Outcome: e.Outcome,
		})
	}
	return resp, nil
}

type localAudit struct {
	papayv1.UnimplementedAuditServiceServer
	srv papayv1.AuditServiceServer
	ic  grpc.UnaryServerInterceptor
}

func (l localAudit) ListAuditEntries(ctx context.Context, req *papayv1.ListAuditEntriesRequest) (*papayv1.ListAuditEntriesResponse, error) {
	return invoke(ctx, l.ic, l.srv, papayv1.AuditService_ListAuditEntries_FullMethodName, req, l.srv.ListAuditEntries)
}
