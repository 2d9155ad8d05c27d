package slackfake

import (
	"encoding/json"
	"io"
	"mime"
	"net/http"
	"strings"
)

// handleResponseURL serves POSTs to response URLs minted for slash commands
// and message button clicks. The body is JSON (what slack-go's
// MsgOptionResponseURL/ReplaceOriginal/DeleteOriginal and PostWebhook send):
// text, blocks, response_type, replace_original, delete_original, thread_ts.
//
// Success is HTTP 200 {"ok":true}. Refusals carry Slack's error code in a
// JSON body with a non-200 status: 404 expired_url / used_url, 400 for
// invalid content, so slack-go reports them as errors.
func (s *Server) handleResponseURL(w http.ResponseWriter, r *http.Request) {
	id := strings.TrimPrefix(r.URL.Path, "/response/")
	body, _ := io.ReadAll(io.LimitReader(r.Body, 16<<20))

	status, code, detail := s.responseURLPost(r, id, body)

	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	if code == "" {
		_, _ = w.Write([]byte(`{"ok":true}`))
		return
	}
	res := map[string]any{"ok": false, "error": code}
	if len(detail) > 0 {
		res["response_metadata"] = map[string]any{"messages": detail}
	}
	_ = json.NewEncoder(w).Encode(res)
}

func (s *Server) responseURLPost(r *http.Request, id string, body []byte) (int, string, []string) {
	s.mu.Lock()
	defer s.mu.Unlock()

	var msg struct {
		Text            string          `json:"text"`
		Blocks          json.RawMessage `json:"blocks"`
		Attachments     json.RawMessage `json:"attachments"`
		ResponseType    string          `json:"response_type"`
		ReplaceOriginal bool            `json:"replace_original"`
		DeleteOriginal  bool            `json:"delete_original"`
		ThreadTS        string          `json:"thread_ts"`
	}
	call := Call{Method: "response_url", Params: map[string]string{"url": id}, At: s.now()}
	finish := func(status int, code string, msgs ...string) (int, string, []string) {
		call.Error = code
		s.calls = append(s.calls, call)
		if code != "" {
			s.violationLocked("response_url: %s%s", code, joinMsgs(msgs))
		} else {
			s.notifyLocked()
		}
		return status, code, msgs
	}

	if r.Method != http.MethodPost {
		return finish(http.StatusMethodNotAllowed, "invalid_method")
	}
	if ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); ct != "application/json" {
		return finish(http.StatusBadRequest, "invalid_payload", "response_url takes a JSON body (Content-Type: application/json)")
	}
	if err := json.Unmarshal(body, &msg); err != nil {
		return finish(http.StatusBadRequest, "invalid_payload")
	}
	var raw map[string]json.RawMessage
	_ = json.Unmarshal(body, &raw)
	for k, v := range raw {
		call.Params[k] = strings.Trim(string(v), `"`)
	}

	ru := s.responseURLs[id]
	switch {
	case ru == nil:
		return finish(http.StatusNotFound, "no_such_response_url")
	case s.now().Sub(ru.issued) > ResponseURLTTL:
		return finish(http.StatusNotFound, "expired_url")
	case ru.uses >= ResponseURLMaxUses:
		return finish(http.StatusNotFound, "used_url")
	}

	if msg.DeleteOriginal {
		ru.uses++
		s.deleteOriginalLocked(ru)
		return finish(http.StatusOK, "")
	}

	blocks, code, msgs := checkMessage(msg.Text, string(msg.Blocks))
	if code != "" {
		return finish(http.StatusBadRequest, code, msgs...)
	}
	atts := json.RawMessage(nil)
	if a := strings.TrimSpace(string(msg.Attachments)); a != "" && a != "null" && a != "[]" {
		atts = msg.Attachments
	}
	if msg.Text == "" && noBlocks(blocks) && atts == nil {
		return finish(http.StatusBadRequest, "no_text")
	}
	ru.uses++

	if msg.ReplaceOriginal {
		switch {
		case ru.orig != nil && !ru.origEphemeral:
			if m := s.findMessageLocked(*ru.orig); m != nil && !m.Deleted {
				s.editLocked(m, msg.Text, blocks, atts, "response_url")
				return finish(http.StatusOK, "")
			}
		case ru.orig != nil:
			for _, e := range s.ephemerals {
				if e.Channel == ru.orig.Channel && e.TS == ru.orig.TS && e.User == ru.user && !e.Deleted {
					e.Text, e.Blocks = msg.Text, blocks
					e.Replaced++
					return finish(http.StatusOK, "")
				}
			}
		case ru.lastEphemeral != nil && !ru.lastEphemeral.Deleted:
			e := ru.lastEphemeral
			e.Text, e.Blocks = msg.Text, blocks
			e.Replaced++
			return finish(http.StatusOK, "")
		}
	}

	if msg.ResponseType == "in_channel" {
		s.persistLocked(ru.channel, msg.ThreadTS, msg.Text, blocks, atts, "response_url")
	} else {
		ru.lastEphemeral = s.ephemeralLocked(ru.channel, ru.user, msg.Text, blocks, "response_url")
	}
	return finish(http.StatusOK, "")
}

func (s *Server) deleteOriginalLocked(ru *responseURL) {
	switch {
	case ru.orig != nil && !ru.origEphemeral:
		if m := s.findMessageLocked(*ru.orig); m != nil {
			m.Deleted = true
		}
	case ru.orig != nil:
		for _, e := range s.ephemerals {
			if e.Channel == ru.orig.Channel && e.TS == ru.orig.TS && e.User == ru.user {
				e.Deleted = true
			}
		}
	case ru.lastEphemeral != nil:
		ru.lastEphemeral.Deleted = true
	}
}
