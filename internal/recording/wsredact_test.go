package recording

import (
	"bytes"
	"testing"

	"github.com/gatehouse-dev/gatehouse/internal/wsframe"
)

func TestRedactWSMessages(t *testing.T) {
	r := &Redactor{Secrets: [][]byte{[]byte("s3cr3t-token")}}
	ex := &Exchange{WebSocket: true, WSMessages: []wsframe.Message{
		{Opcode: "text", Size: 30, Text: `{"auth":"s3cr3t-token","x":1}`},
		{Opcode: "text", Size: 40, Text: "0123456789s3cr3t-token", Truncated: true}, // captured to limit+slack
	}}
	got := r.Exchange(ex, 12)
	if got.WSMessages[0].Text != `{"auth":"[RE` || !got.WSMessages[0].Truncated {
		t.Errorf("message 0: %q truncated %v", got.WSMessages[0].Text, got.WSMessages[0].Truncated)
	}
	if bytes.Contains([]byte(got.WSMessages[1].Text), []byte("s3")) {
		t.Errorf("message 1 keeps part of the secret: %q", got.WSMessages[1].Text)
	}
	if ex.WSMessages[0].Text != `{"auth":"s3cr3t-token","x":1}` {
		t.Error("redaction changed the input")
	}
}
