package tests

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/papayd/papayd/internal/app"
)

// readmePath is the README the tests hold to its word.
const readmePath = "../README.md"

// readmeWalkthroughs are the README sections whose ```sh blocks a newcomer
// runs top to bottom against a sandbox papayd.
var readmeWalkthroughs = []string{
	"## Walkthrough: signing an agreement (sandbox)",
	"## Walkthrough: charging against the agreement (sandbox)",
	"## Walkthrough: refunding a charge (sandbox)",
}

// TestREADMEWalkthrough runs the curl commands of the README's walkthroughs,
// in the README's order, against a sandbox papayd: every answer must be 2xx
// and hold what the README's "# -> ..." comment after it shows. Placeholders
// (SESSION_ID, CONTRACT_ID, TRANSACTION_ID, PA...) take the values of the
// answers before; a command that refers to something not yet created, or
// that the README runs in the wrong order, fails.
func TestREADMEWalkthrough(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile(readmePath)
	if err != nil {
		t.Fatal(err)
	}
	var cmds []readmeCommand
	vars := map[string]string{} // one shell session runs every block
	for _, title := range readmeWalkthroughs {
		blocks, err := readmeShellBlocks(string(raw), title)
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range blocks {
			cs, err := readmeParseShell(b.text, b.line, vars)
			if err != nil {
				t.Fatal(err)
			}
			cmds = append(cmds, cs...)
		}
	}
	p := startWith(t, "", nil)
	host := strings.TrimPrefix(p.base, "http://")
	vals := map[string]string{}
	ran := 0
	for _, c := range cmds {
		if len(c.words) == 0 || c.words[0] != "curl" {
			continue
		}
		req, err := readmeRequest(c, host, vals)
		if err != nil {
			t.Fatalf("README.md:%d: %v", c.line, err)
		}
		body, err := readmeSend(p, req, c.expect)
		if err != nil {
			t.Fatalf("README.md:%d: %s %s: %v", c.line, req.method, req.url, err)
		}
		readmeCollect(body, vals)
		ran++
	}
	if ran < 10 {
		t.Fatalf("ran %d commands of the README's walkthroughs; its blocks were not found or not parsed", ran)
	}
}

// TestREADMEListsEverySetting: every setting `papayd -h` lists appears in
// the README, and the README's memory per cached record agrees with -h.
func TestREADMEListsEverySetting(t *testing.T) {
	t.Parallel()
	readme, err := os.ReadFile(readmePath)
	if err != nil {
		t.Fatal(err)
	}
	var usage bytes.Buffer
	if _, err := app.ParseConfig([]string{"-h"}, func(string) (string, bool) { return "", false }, &usage); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("ParseConfig -h: %v", err)
	}
	envs := regexp.MustCompile(`\(env (PAPAYD_[A-Z0-9_]+)\)`).FindAllStringSubmatch(usage.String(), -1)
	if len(envs) < 10 {
		t.Fatalf("papayd -h lists %d settings:\n%s", len(envs), usage.String())
	}
	for _, m := range envs {
		if !regexp.MustCompile(`\b` + m[1] + `\b`).Match(readme) {
			t.Errorf("README.md does not mention %s, which papayd -h lists", m[1])
		}
	}
	perRecord := regexp.MustCompile(`about [0-9.]+ KiB a record`)
	h := perRecord.FindString(usage.String())
	if h == "" {
		t.Fatalf("papayd -h does not say the record cache's memory per record:\n%s", usage.String())
	}
	if r := perRecord.FindAll(readme, -1); len(r) == 0 {
		t.Errorf("README.md does not say the record cache's memory per record (-h: %q)", h)
	} else {
		for _, s := range r {
			if string(s) != h {
				t.Errorf("README.md says %q, papayd -h %q", s, h)
			}
		}
	}
}

// readmeBlock is one ```sh block and the README line its text starts on.
type readmeBlock struct {
	text string
	line int
}

// readmeShellBlocks returns the ```sh blocks of the section titled title
// (up to the next "## " heading).
func readmeShellBlocks(readme, title string) ([]readmeBlock, error) {
	lines := strings.Split(readme, "\n")
	start := -1
	for i, l := range lines {
		if strings.TrimSpace(l) == title {
			start = i
			break
		}
	}
	if start < 0 {
		return nil, fmt.Errorf("README.md has no section %q", title)
	}
	var (
		blocks []readmeBlock
		cur    *readmeBlock
	)
	for i := start + 1; i < len(lines); i++ {
		l := lines[i]
		switch {
		case cur == nil && strings.HasPrefix(l, "## "):
			i = len(lines)
		case cur == nil && strings.TrimSpace(l) == "```sh":
			cur = &readmeBlock{line: i + 2}
		case cur != nil && strings.TrimSpace(l) == "```":
			blocks = append(blocks, *cur)
			cur = nil
		case cur != nil:
			cur.text += l + "\n"
		}
	}
	if cur != nil {
		return nil, fmt.Errorf("README.md: section %q: unclosed ```sh block", title)
	}
	if len(blocks) == 0 {
		return nil, fmt.Errorf("README.md: section %q has no ```sh block", title)
	}
	return blocks, nil
}

// readmeCommand is one shell command of a README block: its words after
// quote removal and variable expansion, and the "# -> ..." answer the
// README shows after it.
type readmeCommand struct {
	line   int
	words  []string
	expect string
}

// readmeParseShell splits a block into commands the way sh would for the
// little shell the README uses: words, '...' and "..." (with $NAME from
// earlier NAME=value lines), backslash-newline continuations, quotes
// spanning lines, and # comments. NAME=value lines set vars.
func readmeParseShell(text string, firstLine int, vars map[string]string) ([]readmeCommand, error) {
	var (
		cmds    []readmeCommand
		cur     readmeCommand
		word    strings.Builder
		inWord  bool
		line    = firstLine
		inExpct bool // the comments after the last command continue its "# ->"
	)
	endWord := func() {
		if inWord {
			cur.words = append(cur.words, word.String())
			word.Reset()
			inWord = false
		}
	}
	endCmd := func() {
		endWord()
		if len(cur.words) == 0 {
			return
		}
		if len(cur.words) == 1 {
			if name, v, ok := strings.Cut(cur.words[0], "="); ok && regexp.MustCompile(`^[A-Z_]+$`).MatchString(name) {
				vars[name] = v
			}
		}
		cmds = append(cmds, cur)
		cur = readmeCommand{}
		inExpct = false
	}
	rs := []rune(text)
	for i := 0; i < len(rs); i++ {
		r := rs[i]
		switch {
		case r == '\n':
			endCmd()
			line++
		case r == '\\' && i+1 < len(rs) && rs[i+1] == '\n':
			i++
			line++
		case r == ' ' || r == '\t':
			endWord()
		case r == '#' && !inWord:
			j := i
			for j < len(rs) && rs[j] != '\n' {
				j++
			}
			comment := strings.TrimPrefix(string(rs[i:j]), "#")
			i = j - 1
			if len(cur.words) > 0 || len(cmds) == 0 {
				continue // a comment ending a command line, or before any command
			}
			last := &cmds[len(cmds)-1]
			switch {
			case strings.HasPrefix(strings.TrimSpace(comment), "->"):
				inExpct = true
				last.expect += comment + "\n"
			case inExpct && strings.HasPrefix(comment, "  "):
				last.expect += comment + "\n"
			default:
				inExpct = false
			}
		case r == '\'':
			if cur.line == 0 {
				cur.line = line
			}
			inWord = true
			j := i + 1
			for j < len(rs) && rs[j] != '\'' {
				if rs[j] == '\n' {
					line++
				}
				j++
			}
			if j == len(rs) {
				return nil, fmt.Errorf("README.md:%d: unterminated '", line)
			}
			word.WriteString(string(rs[i+1 : j]))
			i = j
		case r == '"':
			if cur.line == 0 {
				cur.line = line
			}
			inWord = true
			j := i + 1
			for j < len(rs) && rs[j] != '"' {
				switch {
				case rs[j] == '\n':
					line++
					word.WriteRune(rs[j])
				case rs[j] == '$':
					k := j + 1
					for k < len(rs) && (rs[k] == '_' || rs[k] >= 'A' && rs[k] <= 'Z') {
						k++
					}
					name := string(rs[j+1 : k])
					v, ok := vars[name]
					if !ok {
						return nil, fmt.Errorf("README.md:%d: $%s is not set before", line, name)
					}
					word.WriteString(v)
					j = k - 1
				case rs[j] == '\\' && j+1 < len(rs):
					j++
					word.WriteRune(rs[j])
				default:
					word.WriteRune(rs[j])
				}
				j++
			}
			if j == len(rs) {
				return nil, fmt.Errorf("README.md:%d: unterminated \"", line)
			}
			i = j
		case r == '$' || r == '`' || r == '|' || r == ';' || r == '&' || r == '<' || r == '>':
			return nil, fmt.Errorf("README.md:%d: %q outside quotes: the README's walkthroughs use plain commands only", line, r)
		default:
			if cur.line == 0 {
				cur.line = line
			}
			inWord = true
			word.WriteRune(r)
		}
	}
	endCmd()
	return cmds, nil
}

// readmeReq is one curl command as an HTTP request.
type readmeReq struct {
	method, url, body string
	header            http.Header
}

// readmePlaceholders are the README's stand-ins for values of earlier
// answers, and the answer field each takes its value from.
var readmePlaceholders = []struct{ placeholder, field string }{
	{"SESSION_ID", "session_id"},
	{"CONTRACT_ID", "contract_id"},
	{"TRANSACTION_ID", "transaction_id"},
	{"PA...", "out_contract_code"},
	{"REFUND_ID", "refund_id"},
	{"we_...", "webhook_endpoint_id"}, // set by the webhook walkthrough's test
	{"evt_...", "event_id"},
}

// readmeRequest turns curl's words into a request to host, the
// placeholders replaced by vals.
func readmeRequest(c readmeCommand, host string, vals map[string]string) (readmeReq, error) {
	req := readmeReq{header: http.Header{}}
	subst := func(s string) (string, error) {
		for _, ph := range readmePlaceholders {
			if !strings.Contains(s, ph.placeholder) {
				continue
			}
			v := vals[ph.field]
			if v == "" {
				return "", fmt.Errorf("%s: no answer before gave a %s", ph.placeholder, ph.field)
			}
			s = strings.ReplaceAll(s, ph.placeholder, v)
		}
		return s, nil
	}
	args := c.words[1:]
	for i := 0; i < len(args); i++ {
		a := args[i]
		needArg := func() (string, error) {
			if i+1 >= len(args) {
				return "", fmt.Errorf("curl %s: missing its argument", a)
			}
			i++
			return subst(args[i])
		}
		var err error
		switch a {
		case "-s", "--silent":
		case "-X", "--request":
			req.method, err = needArg()
		case "-H", "--header":
			var h string
			if h, err = needArg(); err == nil {
				k, v, ok := strings.Cut(h, ":")
				if !ok {
					return req, fmt.Errorf("curl -H %q: not a header", h)
				}
				req.header.Add(strings.TrimSpace(k), strings.TrimSpace(v))
			}
		case "-d", "--data", "--data-raw":
			req.body, err = needArg()
		default:
			if strings.HasPrefix(a, "-") {
				return req, fmt.Errorf("curl %s: an option this test does not know", a)
			}
			if req.url != "" {
				return req, fmt.Errorf("curl: two URLs, %q and %q", req.url, a)
			}
			var u string
			if u, err = subst(a); err == nil {
				if !strings.HasPrefix(u, "localhost:8080/") {
					return req, fmt.Errorf("curl %s: not a URL on localhost:8080", u)
				}
				req.url = "http://" + host + strings.TrimPrefix(u, "localhost:8080")
			}
		}
		if err != nil {
			return req, err
		}
	}
	if req.url == "" {
		return req, errors.New("curl without a URL")
	}
	if req.method == "" {
		req.method = http.MethodGet
		if req.body != "" {
			req.method = http.MethodPost // as curl -d does
		}
	}
	if req.body != "" && req.header.Get("Content-Type") == "" {
		// curl -d sends this type, which papayd's REST API refuses.
		req.header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	return req, nil
}

// readmeShown matches the "key": "value" pairs a README answer shows.
var readmeShown = regexp.MustCompile(`"([a-z_]+)": "([^"]*)"`)

// readmeSend sends req and checks its answer: 2xx, and every "key": "value"
// that expect shows (values with "..." stand for anything). A GET is
// retried for a few seconds, as the notification a read follows arrives
// asynchronously; anything else is sent once. It returns the answer.
func readmeSend(p *papayd, req readmeReq, expect string) (any, error) {
	deadline := time.Now().Add(10 * time.Second)
	for {
		body, err := readmeSendOnce(p, req, expect)
		if err == nil || req.method != http.MethodGet || time.Now().After(deadline) {
			return body, err
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func readmeSendOnce(p *papayd, req readmeReq, expect string) (any, error) {
	var rd io.Reader
	if req.body != "" {
		rd = strings.NewReader(req.body)
	}
	hr, err := http.NewRequest(req.method, req.url, rd)
	if err != nil {
		return nil, err
	}
	hr.Header = req.header.Clone()
	resp, err := p.http.Do(hr)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode/100 != 2 {
		return nil, fmt.Errorf("HTTP %d: %s", resp.StatusCode, raw)
	}
	var body any
	if err := json.Unmarshal(raw, &body); err != nil {
		return nil, fmt.Errorf("answer %q: %v", raw, err)
	}
	for _, m := range readmeShown.FindAllStringSubmatch(expect, -1) {
		if strings.Contains(m[2], "...") {
			continue
		}
		if !readmeHas(body, m[1], m[2]) {
			return nil, fmt.Errorf("the README shows \"%s\": %q, the answer is %s", m[1], m[2], raw)
		}
	}
	return body, nil
}

// readmeHas reports whether key holds the string value anywhere in v.
func readmeHas(v any, key, value string) bool {
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			if s, ok := e.(string); ok && k == key && s == value {
				return true
			}
			if readmeHas(e, key, value) {
				return true
			}
		}
	case []any:
		for _, e := range v {
			if readmeHas(e, key, value) {
				return true
			}
		}
	}
	return false
}

// readmeCollect keeps, from an answer, the first non-empty value of each
// placeholder's field; a signing URL's os_session_id is a session_id.
func readmeCollect(v any, vals map[string]string) {
	found := map[string]bool{}
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, e := range v {
				s, _ := e.(string)
				if (k == "sign_url" || k == "show_code_url") && s != "" {
					if u, err := url.Parse(s); err == nil {
						k, s = "session_id", u.Query().Get("os_session_id")
					}
				}
				if s != "" && !found[k] {
					for _, ph := range readmePlaceholders {
						if ph.field == k {
							vals[k], found[k] = s, true
						}
					}
				}
				walk(e)
			}
		case []any:
			for _, e := range v {
				walk(e)
			}
		}
	}
	walk(v)
}
