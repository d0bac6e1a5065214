package rpc

import (
	"context"

	"google.golang.org/grpc"

	papayv1 "github.com/papayd/papayd/gen/papay/v1"
	"github.com/papayd/papayd/internal/service"
)

// EventServer implements papayv1.EventServiceServer over the service.
type EventServer struct {
	papayv1.UnimplementedEventServiceServer
	svc *service.Service
}

// NewEventServer returns the outbox's gRPC server.
func NewEventServer(svc *service.Service) *EventServer { return &EventServer{svc: svc} }

func eventTypes(ts []string) []service.EventType {
	out := make([]service.EventType, len(ts))
	for i, t := range ts {
		out[i] = service.EventType(t)
	}
	return out
}

// ListEvents returns the events after a cursor.
func (s *EventServer) ListEvents(ctx context.Context, req *papayv1.ListEventsRequest) (*papayv1.ListEventsResponse, error) {
	es, next, err := s.svc.ListEvents(ctx, service.EventFilter{
		AfterSequence: req.GetAfterSequence(), PageSize: int(req.GetPageSize()),
		Types: eventTypes(req.GetTypes()), SubMchID: req.GetSubMchid(),
	})
	if err != nil {
		return nil, err
	}
	resp := &papayv1.ListEventsResponse{NextAfterSequence: next}
	for _, e := range es {
		resp.Events = append(resp.Events, eventToProto(e))
	}
	return resp, nil
}

// GetEvent returns one event.
func (s *EventServer) GetEvent(ctx context.Context, req *papayv1.GetEventRequest) (*papayv1.GetEventResponse, error) {
	e, err := s.svc.GetEvent(ctx, req.GetId())
	if err != nil {
		return nil, err
	}
	return &papayv1.GetEventResponse{Event: eventToProto(e)}, nil
}

// StreamEvents sends the events after a cursor, then follows. The stream
// chain has no error interceptor, so the domain error is mapped here, by
// the same Status.
func (s *EventServer) StreamEvents(req *papayv1.StreamEventsRequest, stream grpc.ServerStreamingServer[papayv1.StreamEventsResponse]) error {
	err := s.svc.StreamEvents(stream.Context(), service.EventFilter{
		AfterSequence: req.GetAfterSequence(), Types: eventTypes(req.GetTypes()), SubMchID: req.GetSubMchid(),
	}, func(e service.Event) error {
		return stream.Send(&papayv1.StreamEventsResponse{Event: eventToProto(e)})
	})
	if err != nil {
		return Status(err).Err()
	}
	return nil
}

func eventToProto(e service.Event) *papayv1.Event {
	p := &papayv1.Event{Id: e.ID, Sequence: e.Sequence, Type: string(e.Type), CreateTime: timeToProto(e.CreateTime), SubMchid: e.SubMchID}
	switch {
	case e.Agreement != nil:
		p.Resource = &papayv1.Event_Agreement{Agreement: agreementToProto(*e.Agreement)}
	case e.Charge != nil:
		p.Resource = &papayv1.Event_Charge{Charge: chargeToProto(*e.Charge)}
	case e.Refund != nil:
		p.Resource = &papayv1.Event_Refund{Refund: refundToProto(*e.Refund)}
	case e.Anomaly != nil:
		a := e.Anomaly
		p.Resource = &papayv1.Event_Anomaly{Anomaly: &papayv1.Anomaly{Kind: a.Kind, OutTradeNo: a.OutTradeNo,
			NotificationId: a.NotificationID, Detail: a.Detail, Time: timeToProto(a.Time)}}
	}
	return p
}

type localEvents struct {
	papayv1.UnimplementedEventServiceServer
	srv papayv1.EventServiceServer
	ic  grpc.UnaryServerInterceptor
}

func (l localEvents) ListEvents(ctx context.Context, req *papayv1.ListEventsRequest) (*papayv1.ListEventsResponse, error) {
	return invoke(ctx, l.ic, l.srv, papayv1.EventService_ListEvents_FullMethodName, req, l.srv.ListEvents)
}

func (l localEvents) GetEvent(ctx context.Context, req *papayv1.GetEventRequest) (*papayv1.GetEventResponse, error) {
	return invoke(ctx, l.ic, l.srv, papayv1.EventService_GetEvent_FullMethodName, req, l.srv.GetEvent)
}
