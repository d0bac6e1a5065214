package wechat

import (
	"context"
	"sync"
	"testing"
	"time"
)

// TestOnDemandDownloadOutlivesForgedCaller is hostile review 10, finding 7:
// a forger who hangs up during the on-demand download must neither cancel
// the download nor use up the on-demand allowance, so that a request signed
// by a really new certificate is verified afterwards.
func TestOnDemandDownloadOutlivesForgedCaller(t *testing.T) {
	t.Parallel()
	clock := &fakeClock{t: time.Now()}
	e, _, _, _, r := newCertTest(t, nil, RefresherOptions{Now: clock.now})
	e.set(fakeAnswer{Status: 200, Sign: signPlatform, Delay: 300 * time.Millisecond,
		Body: certList(listed{cert: platformCert}, listed{cert: rotatedCert})})

	// The forger names a made-up serial and hangs up after 30 ms.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	start := time.Now()
	if r.OnUnknownSerial(ctx, "F0F0F0F0F0F0F0F0F0F0F0F0F0F0F0F0F0F0F0F0") {
		t.Fatal("a made-up serial is known")
	}
	if d := time.Since(start); d > 200*time.Millisecond {
		t.Errorf("the hung-up caller waited %v for the download", d)
	}
	// WeChat's next request is signed by the rotated certificate, within
	// the on-demand gap: it must verify.
	if !r.OnUnknownSerial(context.Background(), rotatedSerial) {
		t.Fatal("after a forger hung up during the download, the rotated certificate is not known")
	}
	if n := e.downloads.Load(); n != 1 {
		t.Errorf("%d downloads, want 1", n)
	}
}

// TestOnDemandConcurrentSameSerial: concurrent requests for one serial make
// one download, even when the caller that started it hangs up at once.
func TestOnDemandConcurrentSameSerial(t *testing.T) {
	t.Parallel()
	clock := &fakeClock{t: time.Now()}
	e, _, _, _, r := newCertTest(t, nil, RefresherOptions{Now: clock.now})
	e.set(fakeAnswer{Status: 200, Sign: signPlatform, Delay: 100 * time.Millisecond,
		Body: certList(listed{cert: platformCert}, listed{cert: rotatedCert})})
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Go(func() {
			ctx := context.Background()
			if i%2 == 0 {
				// Half of them hang up at once.
				c, cancel := context.WithCancel(ctx)
				cancel()
				ctx = c
				r.OnUnknownSerial(ctx, rotatedSerial)
				return
			}
			if !r.OnUnknownSerial(ctx, rotatedSerial) {
				t.Errorf("caller %d: the rotated serial is not known", i)
			}
		})
	}
	wg.Wait()
	if n := e.downloads.Load(); n != 1 {
		t.Errorf("%d downloads for 50 concurrent requests of one serial, want 1", n)
	}
}
