package tests

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/papayd/papayd/internal/app"
	"github.com/papayd/papayd/internal/service"
)

// apiKey is a key made by `papayd keys create` (app.CreateKey) on a data
// directory.
type apiKey struct {
	id, name, token string
}

// createKey creates an API key in dataDir's database, as the operator's
// command line does, whether or not a papayd serves it.
func createKey(t *testing.T, dataDir string, in service.KeyInput) apiKey {
	t.Helper()
	var out bytes.Buffer
	if err := app.CreateKey(context.Background(), app.Config{DataDir: dataDir}, in, &out); err != nil {
		t.Fatalf("create key %s: %v", in.Name, err)
	}
	k := apiKey{name: in.Name}
	for line := range strings.Lines(out.String()) {
		name, value, _ := strings.Cut(strings.TrimSpace(line), ":")
		switch name {
		case "id":
			k.id = strings.TrimSpace(value)
		case "key":
			k.token = strings.TrimSpace(value)
		}
	}
	if k.id == "" || k.token == "" {
		t.Fatalf("create key %s answered %q", in.Name, out.String())
	}
	return k
}

// ctx is a context whose gRPC calls carry the key.
func (k apiKey) ctx() context.Context {
	return metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+k.token)
}

// rest sends a JSON request with the key (none if the token is "") and
// returns the status and the answer's body.
func (p *papayd) rest(k apiKey, method, path string, body []byte) (int, []byte) {
	p.t.Helper()
	return p.restWith(p.http, k, method, path, body)
}

func (p *papayd) restWith(c *http.Client, k apiKey, method, path string, body []byte) (int, []byte) {
	p.t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, p.base+path, rd)
	if err != nil {
		p.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if k.token != "" {
		req.Header.Set("Authorization", "Bearer "+k.token)
	}
	resp, err := c.Do(req)
	if err != nil {
		p.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		p.t.Fatal(err)
	}
	return resp.StatusCode, raw
}

// localAddrs records the local addresses of the connections a client
// dials: the peer papayd sees.
type localAddrs struct {
	mu    sync.Mutex
	addrs map[string]bool
}

func (l *localAddrs) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
	if err == nil {
		l.mu.Lock()
		if l.addrs == nil {
			l.addrs = map[string]bool{}
		}
		l.addrs[c.LocalAddr().String()] = true
		l.mu.Unlock()
	}
	return c, err
}

func (l *localAddrs) has(addr string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.addrs[addr]
}

// tracedClients are a gRPC connection and an HTTP client to p whose local
// addresses are recorded.
func tracedClients(t *testing.T, p *papayd) (*grpc.ClientConn, *localAddrs, *http.Client, *localAddrs) {
	t.Helper()
	g, h := &localAddrs{}, &localAddrs{}
	conn, err := grpc.NewClient(p.app.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) { return g.dial(ctx, "tcp", addr) }))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	hc := &http.Client{Transport: &http.Transport{DialContext: h.dial}}
	t.Cleanup(hc.CloseIdleConnections)
	return conn, g, hc, h
}

// apiMethods lists the methods of every service papayd serves (by server
// reflection), but health checks and reflection itself, with their
// descriptors from the generated code.
func apiMethods(t *testing.T, p *papayd) map[string]protoreflect.MethodDescriptor {
	t.Helper()
	stream, err := reflectionpb.NewServerReflectionClient(p.conn).ServerReflectionInfo(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer stream.CloseSend()
	if err := stream.Send(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{}}); err != nil {
		t.Fatal(err)
	}
	resp, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	methods := map[string]protoreflect.MethodDescriptor{}
	for _, s := range resp.GetListServicesResponse().GetService() {
		if strings.HasPrefix(s.GetName(), "grpc.") {
			continue
		}
		d, err := protoregistry.GlobalFiles.FindDescriptorByName(protoreflect.FullName(s.GetName()))
		if err != nil {
			t.Fatalf("service %s: %v", s.GetName(), err)
		}
		sd := d.(protoreflect.ServiceDescriptor)
		for i := range sd.Methods().Len() {
			m := sd.Methods().Get(i)
			methods["/"+string(sd.FullName())+"/"+string(m.Name())] = m
		}
	}
	if len(methods) == 0 {
		t.Fatal("server reflection lists no papayd service")
	}
	return methods
}
