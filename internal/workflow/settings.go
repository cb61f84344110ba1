package workflow

import (
	"fmt"
	"net/mail"
	"strings"

	"github.com/gatehouse-dev/gatehouse/internal/model"
)

// Settings are the workflow engine's settings (PrivX's WorkflowSettings): the most approvers a step may have, and
// the SMTP server that notification e-mails go through.
type Settings struct {
	// MaxApprovers caps the approvers of one step of a workflow; 0 means no cap.
	MaxApprovers int `json:"request_role_max_approvers"`
	SMTP
}

// SMTP is the mail part of the settings. SMTPPassword is write-only: it is sealed at rest and never answered.
type SMTP struct {
	Host                  string `json:"smtp_server"`
	Port                  int    `json:"smtp_server_port"`
	Enabled               bool   `json:"smtp_server_enabled"`
	BackendAddress        string `json:"privx_backend_address"`
	Username              string `json:"smtp_server_username"`
	Password              string `json:"smtp_server_password"`
	Protocol              string `json:"smtp_server_protocol"`
	SenderAddress         string `json:"smtp_sender_address"`
	EmailRetryAttempts    int    `json:"smtp_retry_attempts"`
	InsecureVerify        bool   `json:"smtp_server_insecure_verify"`
	Provider              string `json:"smtp_provider"`
	AuthenticationMode    string `json:"smtp_authentication_mode"`
	ProviderTokenEndpoint string `json:"smtp_provider_token_endpoint"`
	ProviderTokenScope    string `json:"smtp_provider_token_scope"`
}

// IsZero says whether no SMTP field is set: mail is not configured.
func (s SMTP) IsZero() bool { return s == SMTP{} }

// FirstSet names the first SMTP field that is set, for refusing the lot where mail is not wired.
func (s SMTP) FirstSet() string {
	for _, f := range []struct {
		name string
		set  bool
	}{
		{"smtp_server", s.Host != ""}, {"smtp_server_port", s.Port != 0}, {"smtp_server_enabled", s.Enabled},
		{"privx_backend_address", s.BackendAddress != ""}, {"smtp_server_username", s.Username != ""},
		{"smtp_server_password", s.Password != ""}, {"smtp_server_protocol", s.Protocol != ""},
		{"smtp_sender_address", s.SenderAddress != ""}, {"smtp_retry_attempts", s.EmailRetryAttempts != 0},
		{"smtp_server_insecure_verify", s.InsecureVerify}, {"smtp_provider", s.Provider != ""},
		{"smtp_authentication_mode", s.AuthenticationMode != ""}, {"smtp_provider_token_endpoint", s.ProviderTokenEndpoint != ""},
		{"smtp_provider_token_scope", s.ProviderTokenScope != ""},
	} {
		if f.set {
			return f.name
		}
	}
	return ""
}

// Validate checks the ranges and forms of the settings. Whether mail can be sent at all is the caller's to say.
func (s Settings) Validate() error {
	if s.MaxApprovers < 0 || s.MaxApprovers > 100 {
		return &model.FieldError{Field: "request_role_max_approvers", Msg: "must be between 0 (no cap) and 100"}
	}
	m := s.SMTP
	if m.Port < 0 || m.Port > 65535 {
		return &model.FieldError{Field: "smtp_server_port", Msg: "must be a port number"}
	}
	if m.EmailRetryAttempts < 0 || m.EmailRetryAttempts > 10 {
		return &model.FieldError{Field: "smtp_retry_attempts", Msg: "must be between 0 and 10"}
	}
	if m.SenderAddress != "" {
		if _, err := mail.ParseAddress(m.SenderAddress); err != nil {
			return &model.FieldError{Field: "smtp_sender_address", Msg: "is not an e-mail address"}
		}
	}
	if m.Enabled && (m.Host == "" || m.Port == 0 || m.SenderAddress == "") {
		return &model.FieldError{Field: "smtp_server", Msg: "smtp_server, smtp_server_port and smtp_sender_address are required when smtp_server_enabled"}
	}
	if strings.ContainsAny(m.Host, " /") {
		return &model.FieldError{Field: "smtp_server", Msg: fmt.Sprintf("%q is not a host name", m.Host)}
	}
	return nil
}

// CheckApprovers enforces MaxApprovers on a workflow.
func (s Settings) CheckApprovers(w *Workflow) error {
	if s.MaxApprovers == 0 {
		return nil
	}
	for i, st := range w.Steps {
		if len(st.Approvers) > s.MaxApprovers {
			return &model.FieldError{Field: fmt.Sprintf("steps[%d].approvers", i),
				Msg: fmt.Sprintf("has %d approvers; the settings allow %d (request_role_max_approvers)", len(st.Approvers), s.MaxApprovers)}
		}
	}
	return nil
}
