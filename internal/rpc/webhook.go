package rpc

import (
	"context"
	"strconv"

	"google.golang.org/grpc"

	papayv1 "github.com/papayd/papayd/gen/papay/v1"
	"github.com/papayd/papayd/internal/service"
)

// WebhookServer implements papayv1.WebhookServiceServer over the service.
type WebhookServer struct {
	papayv1.UnimplementedWebhookServiceServer
	svc *service.Service
	// queued is called after a redelivery was queued (the engine's Notify);
	// nil: nothing to wake.
	queued func()
}

// NewWebhookServer returns the webhook endpoints' gRPC server; queued, if
// not nil, is called after RedeliverEvent queued deliveries again and
// after EnableWebhookEndpoint.
func NewWebhookServer(svc *service.Service, queued func()) *WebhookServer {
	return &WebhookServer{svc: svc, queued: queued}
}

// CreateWebhookEndpoint records an endpoint and returns its secret once.
func (s *WebhookServer) CreateWebhookEndpoint(ctx context.Context, req *papayv1.CreateWebhookEndpointRequest) (*papayv1.CreateWebhookEndpointResponse, error) {
	e, secret, err := s.svc.CreateWebhookEndpoint(ctx, service.WebhookEndpointInput{
		URL: req.GetUrl(), EventTypes: eventTypes(req.GetEventTypes()), SubMchID: req.GetSubMchid(),
	})
	if err != nil {
		return nil, err
	}
	return &papayv1.CreateWebhookEndpointResponse{Endpoint: endpointToProto(e), Secret: secret}, nil
}

// ListWebhookEndpoints returns the endpoints the caller sees.
func (s *WebhookServer) ListWebhookEndpoints(ctx context.Context, _ *papayv1.ListWebhookEndpointsRequest) (*papayv1.ListWebhookEndpointsResponse, error) {
	es, err := s.svc.ListWebhookEndpoints(ctx)
	if err != nil {
		return nil, err
	}
	resp := &papayv1.ListWebhookEndpointsResponse{Endpoints: make([]*papayv1.WebhookEndpoint, 0, len(es))}
	for _, e := range es {
		resp.Endpoints = append(resp.Endpoints, endpointToProto(e))
	}
	return resp, nil
}

// GetWebhookEndpoint returns one endpoint.
func (s *WebhookServer) GetWebhookEndpoint(ctx context.Context, req *papayv1.GetWebhookEndpointRequest) (*papayv1.GetWebhookEndpointResponse, error) {
	e, err := s.svc.GetWebhookEndpoint(ctx, req.GetId())
	if err != nil {
		return nil, err
	}
	return &papayv1.GetWebhookEndpointResponse{Endpoint: endpointToProto(e)}, nil
}

// EnableWebhookEndpoint enables again an endpoint a 410 disabled.
func (s *WebhookServer) EnableWebhookEndpoint(ctx context.Context, req *papayv1.EnableWebhookEndpointRequest) (*papayv1.EnableWebhookEndpointResponse, error) {
	e, err := s.svc.EnableWebhookEndpoint(ctx, req.GetId())
	if err != nil {
		return nil, err
	}
	if s.queued != nil {
		s.queued() // it has events to catch up on
	}
	return &papayv1.EnableWebhookEndpointResponse{Endpoint: endpointToProto(e)}, nil
}

// DeleteWebhookEndpoint deletes one endpoint.
func (s *WebhookServer) DeleteWebhookEndpoint(ctx context.Context, req *papayv1.DeleteWebhookEndpointRequest) (*papayv1.DeleteWebhookEndpointResponse, error) {
	if err := s.svc.DeleteWebhookEndpoint(ctx, req.GetId()); err != nil {
		return nil, err
	}
	return &papayv1.DeleteWebhookEndpointResponse{}, nil
}

// ListWebhookDeliveries pages through an endpoint's deliveries. The page
// token is the last delivery's event sequence.
func (s *WebhookServer) ListWebhookDeliveries(ctx context.Context, req *papayv1.ListWebhookDeliveriesRequest) (*papayv1.ListWebhookDeliveriesResponse, error) {
	f := service.WebhookDeliveryFilter{EndpointID: req.GetEndpointId(), State: service.WebhookDeliveryState(req.GetState()),
		PageSize: int(req.GetPageSize())}
	if t := req.GetPageToken(); t != "" {
		after, err := strconv.ParseUint(t, 10, 64)
		if err != nil {
			return nil, fieldError("page_token", "is not a token of this list")
		}
		f.AfterSequence = after
	}
	ds, err := s.svc.ListWebhookDeliveries(ctx, f)
	if err != nil {
		return nil, err
	}
	size := f.PageSize
	if size == 0 {
		size = service.DefaultPageSize
	}
	resp := &papayv1.ListWebhookDeliveriesResponse{Deliveries: make([]*papayv1.WebhookDelivery, 0, len(ds))}
	for _, d := range ds {
		resp.Deliveries = append(resp.Deliveries, deliveryToProto(d))
	}
	if len(ds) > 0 && len(ds) >= size {
		resp.NextPageToken = strconv.FormatUint(ds[len(ds)-1].EventSequence, 10)
	}
	return resp, nil
}

// RedeliverEvent queues an event's finished deliveries again.
func (s *WebhookServer) RedeliverEvent(ctx context.Context, req *papayv1.RedeliverEventRequest) (*papayv1.RedeliverEventResponse, error) {
	ds, err := s.svc.Redeliver(ctx, req.GetId())
	if err != nil {
		return nil, err
	}
	if s.queued != nil {
		s.queued()
	}
	resp := &papayv1.RedeliverEventResponse{Deliveries: make([]*papayv1.WebhookDelivery, 0, len(ds))}
	for _, d := range ds {
		resp.Deliveries = append(resp.Deliveries, deliveryToProto(d))
	}
	return resp, nil
}

func endpointToProto(e service.WebhookEndpoint) *papayv1.WebhookEndpoint {
	p := &papayv1.WebhookEndpoint{Id: e.ID, Url: e.URL, SubMchids: e.SubMchIDs, State: string(e.State),
		DisableReason: e.DisableReason, CreateTime: timeToProto(e.CreateTime), UpdateTime: timeToProto(e.UpdateTime)}
	for _, t := range e.EventTypes {
		p.EventTypes = append(p.EventTypes, string(t))
	}
	return p
}

func deliveryToProto(d service.WebhookDelivery) *papayv1.WebhookDelivery {
	return &papayv1.WebhookDelivery{EndpointId: d.EndpointID, EventId: d.EventID, EventSequence: d.EventSequence,
		EventType: string(d.EventType), SubMchid: d.SubMchID, State: string(d.State), Attempts: int32(d.Attempts),
		NextAttemptTime: timeToProto(d.NextAttemptTime), LastAttemptTime: timeToProto(d.LastAttemptTime),
		LastStatus: int32(d.LastStatus), LastError: d.LastError,
		CreateTime: timeToProto(d.CreateTime), UpdateTime: timeToProto(d.UpdateTime)}
}

// EventResponse is GetEvent's answer for e: what a webhook delivery's body
// encodes.
func EventResponse(e service.Event) *papayv1.GetEventResponse {
	return &papayv1.GetEventResponse{Event: eventToProto(e)}
}

type localWebhooks struct {
	papayv1.UnimplementedWebhookServiceServer
	srv papayv1.WebhookServiceServer
	ic  grpc.UnaryServerInterceptor
}

func (l localWebhooks) CreateWebhookEndpoint(ctx context.Context, req *papayv1.CreateWebhookEndpointRequest) (*papayv1.CreateWebhookEndpointResponse, error) {
	return invoke(ctx, l.ic, l.srv, papayv1.WebhookService_CreateWebhookEndpoint_FullMethodName, req, l.srv.CreateWebhookEndpoint)
}

func (l localWebhooks) ListWebhookEndpoints(ctx context.Context, req *papayv1.ListWebhookEndpointsRequest) (*papayv1.ListWebhookEndpointsResponse, error) {
	return invoke(ctx, l.ic, l.srv, papayv1.WebhookService_ListWebhookEndpoints_FullMethodName, req, l.srv.ListWebhookEndpoints)
}

func (l localWebhooks) GetWebhookEndpoint(ctx context.Context, req *papayv1.GetWebhookEndpointRequest) (*papayv1.GetWebhookEndpointResponse, error) {
	return invoke(ctx, l.ic, l.srv, papayv1.WebhookService_GetWebhookEndpoint_FullMethodName, req, l.srv.GetWebhookEndpoint)
}

func (l localWebhooks) EnableWebhookEndpoint(ctx context.Context, req *papayv1.EnableWebhookEndpointRequest) (*papayv1.EnableWebhookEndpointResponse, error) {
	return invoke(ctx, l.ic, l.srv, papayv1.WebhookService_EnableWebhookEndpoint_FullMethodName, req, l.srv.EnableWebhookEndpoint)
}

func (l localWebhooks) DeleteWebhookEndpoint(ctx context.Context, req *papayv1.DeleteWebhookEndpointRequest) (*papayv1.DeleteWebhookEndpointResponse, error) {
	return invoke(ctx, l.ic, l.srv, papayv1.WebhookService_DeleteWebhookEndpoint_FullMethodName, req, l.srv.DeleteWebhookEndpoint)
}

func (l localWebhooks) ListWebhookDeliveries(ctx context.Context, req *papayv1.ListWebhookDeliveriesRequest) (*papayv1.ListWebhookDeliveriesResponse, error) {
	return invoke(ctx, l.ic, l.srv, papayv1.WebhookService_ListWebhookDeliveries_FullMethodName, req, l.srv.ListWebhookDeliveries)
}

func (l localWebhooks) RedeliverEvent(ctx context.Context, req *papayv1.RedeliverEventRequest) (*papayv1.RedeliverEventResponse, error) {
	return invoke(ctx, l.ic, l.srv, papayv1.WebhookService_RedeliverEvent_FullMethodName, req, l.srv.RedeliverEvent)
}
