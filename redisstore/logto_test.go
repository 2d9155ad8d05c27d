package redisstore_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tapbot/tapbot/internal/redistest"
	"github.com/tapbot/tapbot/redisstore"
)

// lockedBuffer is a log sink go-redis's goroutines may write to while the test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestLogToSaysRedisOnce: go-redis starts some of its messages with "redis: " and not others;
// LogTo names the client once either way, so no line reads "redis: redis: ...".
func TestLogToSaysRedisOnce(t *testing.T) {
	srv := redistest.Start(t)
	tests := []struct {
		name string
		url  string
		do   func(ctx context.Context, t *testing.T, url string)
		want string // the message go-redis logs, as the log line must show it
	}{
		{
			// go-redis writes "redis: connection pool: failed to dial after ..."
			name: "a message go-redis prefixes itself",
			url:  "unix://" + t.TempDir() + "/nothing.sock",
			do: func(ctx context.Context, t *testing.T, url string) {
				rdb, err := redisstore.NewClient(url)
				if err != nil {
					t.Fatal(err)
				}
				defer rdb.Close()
				_ = rdb.Ping(ctx).Err()
			},
			want: "redis: connection pool: failed to dial after",
		},
		{
			// go-redis writes "specified duration is ..." with no prefix
			name: "a message without go-redis's prefix",
			url:  srv.URL(),
			do: func(ctx context.Context, t *testing.T, url string) {
				rdb, err := redisstore.NewClient(url)
				if err != nil {
					t.Fatal(err)
				}
				defer rdb.Close()
				if err := rdb.Set(ctx, "{test}:logto", "v", 500*time.Microsecond).Err(); err != nil {
					t.Fatal(err)
				}
			},
			want: "redis: specified duration is 500µs",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs lockedBuffer
			redisstore.LogTo(slog.New(slog.NewJSONHandler(&logs, nil)))
			t.Cleanup(func() { redisstore.LogTo(slog.New(slog.DiscardHandler)) })
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			tt.do(ctx, t, tt.url)

			var msgs []string
			for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
				var rec struct {
					Msg   string `json:"msg"`
					Level string `json:"level"`
				}
				if err := json.Unmarshal([]byte(line), &rec); err != nil {
					t.Fatalf("log line %q is not JSON: %v", line, err)
				}
				msgs = append(msgs, rec.Msg)
				if strings.Contains(rec.Msg, "redis: redis:") {
					t.Errorf("log line says redis twice: %q", rec.Msg)
				}
			}
			found := false
			for _, m := range msgs {
				found = found || strings.HasPrefix(m, tt.want)
			}
			if !found {
				t.Errorf("no log line starting %q; got %q", tt.want, msgs)
			}
		})
	}
}
