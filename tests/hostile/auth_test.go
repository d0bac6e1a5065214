package hostile

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	papayv1 "github.com/papayd/papayd/gen/papay/v1"
)

// guessedKeys is how many random bearer tokens the key-guessing probe
// sends, half over REST and half over gRPC, from guessWorkers at once.
const (
	guessedKeys  = 10000
	guessWorkers = 8
)

// guessKeys starts papayd with PAPAYD_AUTH=keys and sends it guessedKeys
// random bearer tokens, some shaped as papayd's own (pk_<id>_<secret>). It
// is accepted when any answer is not 401 (REST) or UNAUTHENTICATED (gRPC),
// when the log grew by more than 1 MiB (refusals are logged as samples), or
// when papayd died.
func guessKeys(t *testing.T) (bool, string) {
	p := start(t, map[string]string{"PAPAYD_AUTH": "keys", "PAPAYD_LOG_LEVEL": "info"})
	conn := p.dial(t)
	charges := papayv1.NewChargeServiceClient(conn)
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: guessWorkers}}
	defer client.CloseIdleConnections()
	before := p.logBytes()
	start := time.Now()

	var others atomic.Int64
	var first atomic.Value // the first answer that was not a refusal
	other := func(what string) {
		if others.Add(1) == 1 {
			first.Store(what)
		}
	}
	work := make(chan int)
	var wg sync.WaitGroup
	for range guessWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				token := guess(i)
				if i%2 == 0 {
					req, _ := http.NewRequest("GET", "http://"+p.http+"/v1/charges/GUESS-1", nil)
					req.Header.Set("Authorization", "Bearer "+token)
					resp, err := client.Do(req)
					if err != nil {
						other("REST: " + err.Error())
						continue
					}
					_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
					resp.Body.Close()
					if resp.StatusCode != http.StatusUnauthorized {
						other(fmt.Sprintf("REST: HTTP %d", resp.StatusCode))
					}
					continue
				}
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token)
				_, err := charges.GetCharge(ctx, &papayv1.GetChargeRequest{OutTradeNo: "GUESS-1"})
				cancel()
				if status.Code(err) != codes.Unauthenticated {
					other(fmt.Sprintf("gRPC: %v", err))
				}
			}
		}()
	}
	for i := range guessedKeys {
		work <- i
	}
	close(work)
	wg.Wait()
	took := time.Since(start)
	grew := p.logBytes() - before
	alive := p.alive()
	detail := fmt.Sprintf("%d random keys in %v: %d answers not a refusal, log grew %d bytes, alive %v",
		guessedKeys, took.Round(time.Millisecond), others.Load(), grew, alive)
	if w, ok := first.Load().(string); ok {
		detail += "; first: " + w
	}
	return others.Load() > 0 || grew > 1<<20 || !alive, detail
}

// guess is the i-th guessed token: every other one shaped as papayd's
// keys are (pk_, a 12-character id, a 52-character secret, all base32),
// the others random text of varied length.
func guess(i int) string {
	if i%4 < 2 {
		return "pk_" + lowerBase32(12) + "_" + lowerBase32(52)
	}
	return rand.Text()[:1+i%26]
}

// lowerBase32 is n random characters of a-z and 2-7.
func lowerBase32(n int) string {
	const alphabet = "abcdefghijklmnopqrstuvwxyz234567"
	b := make([]byte, n)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = alphabet[b[i]%32]
	}
	return string(b)
}
