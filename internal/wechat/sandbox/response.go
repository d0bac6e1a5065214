package sandbox

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
)

// bufferedResponse collects what an API handler writes so the whole response (including
// the mux's own 404s and redirects) can be signed before anything reaches the client.
type bufferedResponse struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func newBufferedResponse() *bufferedResponse { return &bufferedResponse{header: http.Header{}} }

func (b *bufferedResponse) Header() http.Header { return b.header }

func (b *bufferedResponse) WriteHeader(status int) {
	if b.status == 0 {
		b.status = status
	}
}

func (b *bufferedResponse) Write(p []byte) (int, error) {
	b.WriteHeader(http.StatusOK)
	return b.body.Write(p)
}

// flushSigned writes b to w with WeChat Pay's response signature. Bodies of 204 and 304
// are dropped, so a 204 is signed over an empty body ("TS\nNONCE\n\n").
func (s *Sandbox) flushSigned(w http.ResponseWriter, r *http.Request, b *bufferedResponse) {
	status := b.status
	if status == 0 {
		status = http.StatusOK
	}
	body := b.body.Bytes()
	if status == http.StatusNoContent || status == http.StatusNotModified {
		body = nil
	}
	key, serial := s.signer(r)
	signed, err := SignatureHeaders(key, serial, s.now().Unix(), newNonce(), body)
	if err != nil {
		s.log.Error("sandbox: sign response", slog.Any("err", err))
		http.Error(w, "sandbox: cannot sign response", http.StatusInternalServerError)
		return
	}
	dst := w.Header()
	for k, v := range b.header {
		dst[k] = v
	}
	for k, v := range signed {
		if k == "Content-Type" && dst.Get(k) != "" {
			continue
		}
		dst[k] = v
	}
	if len(body) == 0 {
		dst.Del("Content-Type")
	}
	w.WriteHeader(status)
	w.Write(body)
}

// marshalJSON encodes v without HTML escaping (URLs keep their '&'), like WeChat Pay.
func marshalJSON(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// writeJSON writes v as the JSON body with the given status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := marshalJSON(v)
	if err != nil {
		status = http.StatusInternalServerError
		body = []byte(`{"code":"SYSTEM_ERROR","message":"cannot encode response"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(body)
}

// writeAPIError writes a WeChat Pay error body.
func writeAPIError(w http.ResponseWriter, e *apiError) { writeJSON(w, e.status, e) }
