package service

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"slices"
	"strings"
	"time"
)

// WebhookEndpoint is a URL that receives events, as a caller sees it: its
// signing secret is shown once, by CreateWebhookEndpoint, and never again.
type WebhookEndpoint struct {
	ID         string // we_...
	URL        string
	EventTypes []EventType // empty: every type
	// SubMchIDs are the sub-merchants whose events the endpoint receives;
	// empty: every sub-merchant.
	SubMchIDs     []string
	State         WebhookEndpointState
	DisableReason string // why it is DISABLED, e.g. "HTTP 410 Gone"
	// Cursor is the sequence of the last event the engine turned into a
	// delivery (or skipped); the next delivery is of a later event.
	Cursor     uint64
	CreateTime time.Time
	UpdateTime time.Time
}

// StoredWebhookEndpoint is an endpoint with its signing secret, as the
// store records it (in the clear: the signer needs it; the database file is
// readable by its owner only) and the webhook engine reads it.
type StoredWebhookEndpoint struct {
	WebhookEndpoint
	Secret string // whsec_<base64 of 32 random bytes>
}

// WebhookEndpointState is an endpoint's state.
type WebhookEndpointState string

// The endpoint states. Only an ENABLED endpoint receives events; a DELETED
// one is kept, with its deliveries, but no caller sees it.
const (
	WebhookEndpointEnabled  WebhookEndpointState = "ENABLED"
	WebhookEndpointDisabled WebhookEndpointState = "DISABLED"
	WebhookEndpointDeleted  WebhookEndpointState = "DELETED"
)

// WebhookEndpointInput is what CreateWebhookEndpoint needs.
type WebhookEndpointInput struct {
	URL        string
	EventTypes []EventType // empty: every type
	// SubMchID limits the endpoint to one sub-merchant. Empty: every
	// sub-merchant the caller sees (all of them for an unlimited caller,
	// the key's own set for a limited one).
	SubMchID string
}

// webhookSecretPrefix starts a signing secret, as the Standard Webhooks
// specification writes them.
const webhookSecretPrefix = "whsec_"

// WebhookMaker makes the random parts of webhook endpoints. The IDs given
// to New may implement it (tests do); otherwise crypto/rand makes them.
type WebhookMaker interface {
	// NewWebhookEndpointID returns a fresh endpoint id.
	NewWebhookEndpointID() string
	// NewWebhookSecret returns 256 fresh random bits.
	NewWebhookSecret() [32]byte
}

// WebhookSecretKey returns the key bytes of a signing secret: the base64
// after "whsec_".
func WebhookSecretKey(secret string) ([]byte, error) {
	b64, ok := strings.CutPrefix(secret, webhookSecretPrefix)
	if !ok {
		return nil, fmt.Errorf("webhook secret does not start with %q", webhookSecretPrefix)
	}
	key, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return nil, fmt.Errorf("webhook secret: %w", err)
	}
	return key, nil
}

func (in WebhookEndpointInput) validate(c Caller) error {
	var v violations
	if in.URL == "" {
		v.add("url", "is required")
	}
	v.link("url", in.URL, 2048)
	for i, t := range in.EventTypes {
		if !slices.Contains(EventTypes, t) {
			v.add(fmt.Sprintf("event_types[%d]", i), "%q is not an event type", t)
		}
	}
	v.token("sub_mchid", in.SubMchID, 32, false)
	if err := v.err(); err != nil {
		return err
	}
	if in.SubMchID != "" && !c.Sees(in.SubMchID) {
		return wrap(ErrPermissionDenied, "the API key may not act for sub_mchid "+in.SubMchID, nil)
	}
	return nil
}

// seesEndpoint reports whether c may see e: every sub-merchant e serves is
// one of c's. An endpoint of every sub-merchant is seen by unlimited
// callers only.
func (c Caller) seesEndpoint(e WebhookEndpoint) bool {
	if len(c.SubMchIDs) == 0 {
		return true
	}
	if len(e.SubMchIDs) == 0 {
		return false
	}
	for _, id := range e.SubMchIDs {
		if !c.Sees(id) {
			return false
		}
	}
	return true
}

// CreateWebhookEndpoint records an ENABLED endpoint and returns it with
// its signing secret, which papayd does not show again. The endpoint
// receives the events created from now on. INVALID_ARGUMENT names the
// field at fault; PERMISSION_DENIED when a limited caller names a
// sub-merchant it may not act for.
func (s *Service) CreateWebhookEndpoint(ctx context.Context, in WebhookEndpointInput) (WebhookEndpoint, string, error) {
	c := CallerFrom(ctx)
	if err := in.validate(c); err != nil {
		return WebhookEndpoint{}, "", err
	}
	now := s.clock.Now()
	id, key := s.newWebhookParts()
	e := StoredWebhookEndpoint{
		WebhookEndpoint: WebhookEndpoint{ID: id, URL: in.URL, EventTypes: slices.Clone(in.EventTypes),
			SubMchIDs: slices.Clone(c.SubMchIDs), State: WebhookEndpointEnabled, CreateTime: now, UpdateTime: now},
		Secret: webhookSecretPrefix + base64.StdEncoding.EncodeToString(key[:]),
	}
	if in.SubMchID != "" {
		e.SubMchIDs = []string{in.SubMchID}
	}
	err := s.store.InTx(ctx, func(tx Tx) error {
		if err := tx.CreateWebhookEndpoint(ctx, e); err != nil {
			return err
		}
		return s.audit(ctx, tx, "CreateWebhookEndpoint", "webhook-endpoints/"+id)
	})
	if err != nil {
		return WebhookEndpoint{}, "", fmt.Errorf("create webhook endpoint %s: %w", id, err)
	}
	s.webhookEndpointsChanged()
	s.log.InfoContext(ctx, "webhook endpoint created", "endpoint_id", id)
	return e.WebhookEndpoint, e.Secret, nil
}

// webhookEndpointsChanged tells Config.WebhookEndpointsChanged that an
// endpoint changed. An EnableWebhookEndpoint of an enabled endpoint tells
// it too: harmless, one more read.
func (s *Service) webhookEndpointsChanged() {
	if f := s.cfg.WebhookEndpointsChanged; f != nil {
		f()
	}
}

// newWebhookParts returns a fresh endpoint id and secret key.
func (s *Service) newWebhookParts() (string, [32]byte) {
	if m, ok := s.ids.(WebhookMaker); ok {
		return m.NewWebhookEndpointID(), m.NewWebhookSecret()
	}
	var b [10]byte
	var key [32]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	_, _ = rand.Read(key[:])
	return "we_" + keyEncoding.EncodeToString(b[:]), key
}

// ListWebhookEndpoints returns the endpoints the caller sees, deleted ones
// left out, in creation order.
func (s *Service) ListWebhookEndpoints(ctx context.Context) ([]WebhookEndpoint, error) {
	all, err := s.store.WebhookEndpoints(ctx)
	if err != nil {
		return nil, fmt.Errorf("list webhook endpoints: %w", err)
	}
	c := CallerFrom(ctx)
	var out []WebhookEndpoint
	for _, e := range all {
		if e.State != WebhookEndpointDeleted && c.seesEndpoint(e.WebhookEndpoint) {
			out = append(out, e.WebhookEndpoint)
		}
	}
	return out, nil
}

// ErrWebhookEndpointNotFound is the error for an endpoint id that names no
// endpoint the caller sees.
var ErrWebhookEndpointNotFound = &Error{Kind: KindNotFound, Reason: "WEBHOOK_ENDPOINT_NOT_FOUND", Message: "webhook endpoint not found"}

// visibleEndpoint returns the endpoint id from r if ctx's caller sees it
// and it is not deleted; else ErrWebhookEndpointNotFound.
func visibleEndpoint(ctx context.Context, r WebhookReader, id string) (StoredWebhookEndpoint, error) {
	e, err := r.WebhookEndpoint(ctx, id)
	if err != nil {
		if KindOf(err) == KindNotFound {
			// Without the cause, as for another's endpoint below.
			return StoredWebhookEndpoint{}, ErrWebhookEndpointNotFound
		}
		return e, err
	}
	if e.State == WebhookEndpointDeleted || !CallerFrom(ctx).seesEndpoint(e.WebhookEndpoint) {
		return StoredWebhookEndpoint{}, ErrWebhookEndpointNotFound
	}
	return e, nil
}

// GetWebhookEndpoint returns the endpoint id. ErrWebhookEndpointNotFound
// when there is none the caller sees.
func (s *Service) GetWebhookEndpoint(ctx context.Context, id string) (WebhookEndpoint, error) {
	e, err := visibleEndpoint(ctx, s.store, id)
	if err != nil {
		return WebhookEndpoint{}, fmt.Errorf("get webhook endpoint %s: %w", id, err)
	}
	return e.WebhookEndpoint, nil
}

// EnableWebhookEndpoint enables again the endpoint id, disabled by a 410
// Gone answer: it resumes where it stopped, so the events appended while
// it was disabled are delivered, in order (the delivery the 410 failed
// stays FAILED: RedeliverEvent sends it again). An enabled endpoint is
// answered as it is. ErrWebhookEndpointNotFound when there is none the
// caller sees (a deleted one included).
func (s *Service) EnableWebhookEndpoint(ctx context.Context, id string) (WebhookEndpoint, error) {
	var e StoredWebhookEndpoint
	err := s.store.InTx(ctx, func(tx Tx) error {
		var err error
		if e, err = visibleEndpoint(ctx, tx, id); err != nil || e.State == WebhookEndpointEnabled {
			return err
		}
		e.State, e.DisableReason, e.UpdateTime = WebhookEndpointEnabled, "", s.clock.Now()
		if err := tx.UpdateWebhookEndpoint(ctx, e.WebhookEndpoint); err != nil {
			return err
		}
		return s.audit(ctx, tx, "EnableWebhookEndpoint", "webhook-endpoints/"+id)
	})
	if err != nil {
		return WebhookEndpoint{}, fmt.Errorf("enable webhook endpoint %s: %w", id, err)
	}
	s.webhookEndpointsChanged()
	s.log.InfoContext(ctx, "webhook endpoint enabled", "endpoint_id", id)
	return e.WebhookEndpoint, nil
}

// DeleteWebhookEndpoint marks the endpoint id DELETED: it receives nothing
// more, and no caller sees it; its row and deliveries are kept.
// ErrWebhookEndpointNotFound when there is none the caller sees.
func (s *Service) DeleteWebhookEndpoint(ctx context.Context, id string) error {
	now := s.clock.Now()
	err := s.store.InTx(ctx, func(tx Tx) error {
		e, err := visibleEndpoint(ctx, tx, id)
		if err != nil {
			return err
		}
		e.State, e.UpdateTime = WebhookEndpointDeleted, now
		if err := tx.UpdateWebhookEndpoint(ctx, e.WebhookEndpoint); err != nil {
			return err
		}
		return s.audit(ctx, tx, "DeleteWebhookEndpoint", "webhook-endpoints/"+id)
	})
	if err != nil {
		return fmt.Errorf("delete webhook endpoint %s: %w", id, err)
	}
	s.webhookEndpointsChanged()
	s.log.InfoContext(ctx, "webhook endpoint deleted", "endpoint_id", id)
	return nil
}
