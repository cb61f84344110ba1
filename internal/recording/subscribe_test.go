package recording

import (
	"context"
	"net/http"
	"testing"
)

func TestSubscribe(t *testing.T) {
	ctx := context.Background()
	s := newTestStore(t, t.TempDir())
	w, err := s.Create(ctx, testMeta("live"), &Redactor{Secrets: [][]byte{[]byte("topsecret")}})
	if err != nil {
		t.Fatal(err)
	}
	fast, cancelFast := s.Subscribe("live")
	defer cancelFast()
	slow, cancelSlow := s.Subscribe("live")

	ex := testExchange(0)
	ex.RequestHeaders = http.Header{"X-Token": {"topsecret"}}
	if err := w.Append(ctx, ex); err != nil {
		t.Fatal(err)
	}
	got := <-fast
	if got.Seq != 1 || got.RequestHeaders.Get("X-Token") != Redacted {
		t.Errorf("live exchange = seq %d, X-Token %q; want seq 1, redacted", got.Seq, got.RequestHeaders.Get("X-Token"))
	}

	// The slow follower never reads: once its buffer is full it is dropped
	// and Append keeps going without blocking.
	for i := range subscriberBuffer + 5 {
		if err := w.Append(ctx, testExchange(i)); err != nil {
			t.Fatal(err)
		}
		<-fast
	}
	n := 0
	for range slow {
		n++
	}
	if n != subscriberBuffer {
		t.Errorf("slow follower received %d before being dropped, want %d", n, subscriberBuffer)
	}
	cancelSlow() // after the drop: must not panic on a closed channel

	if _, err := w.Close("done"); err != nil {
		t.Fatal(err)
	}
	if _, ok := <-fast; ok {
		t.Error("follower channel still open after the session closed")
	}

	ch, cancel := s.Subscribe("live")
	defer cancel()
	if _, ok := <-ch; ok {
		t.Error("Subscribe to a closed session returned an open channel")
	}
}
