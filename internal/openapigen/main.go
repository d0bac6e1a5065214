// Command openapigen applies a JSON merge patch (RFC 7386) to the OpenAPI
// document protoc-gen-openapiv2 generated, in place, keeping the order of
// the document's keys (new keys follow, in the patch's order). `make
// generate` runs it after buf: the patch adds what is not an RPC (health,
// readiness, WeChat Pay's notification callback, the error schema) and
// corrects what the generator cannot say per HTTP binding.
//
//	go run ./internal/openapigen -patch api/papay/v1/papay_openapi_patch.json gen/openapi/papay.swagger.json
//
// It imports the standard library only.
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
)

func main() {
	patch := flag.String("patch", "", "JSON merge patch (RFC 7386) to apply")
	flag.Parse()
	if *patch == "" || flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: openapigen -patch PATCH.json DOCUMENT.json")
		os.Exit(2)
	}
	if err := run(*patch, flag.Arg(0)); err != nil {
		fmt.Fprintln(os.Stderr, "openapigen:", err)
		os.Exit(1)
	}
}

func run(patchFile, docFile string) error {
	p, err := os.ReadFile(patchFile)
	if err != nil {
		return err
	}
	d, err := os.ReadFile(docFile)
	if err != nil {
		return err
	}
	out, err := apply(d, p)
	if err != nil {
		return fmt.Errorf("%s onto %s: %w", patchFile, docFile, err)
	}
	return os.WriteFile(docFile, out, 0o644)
}

// apply returns doc with patch merged into it, indented by two spaces.
func apply(doc, patch []byte) ([]byte, error) {
	d, err := decode(doc)
	if err != nil {
		return nil, fmt.Errorf("document: %w", err)
	}
	p, err := decode(patch)
	if err != nil {
		return nil, fmt.Errorf("patch: %w", err)
	}
	if _, ok := p.(*object); !ok {
		return nil, errors.New("patch: not a JSON object")
	}
	raw, err := marshal(merge(d, p))
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	if err := json.Indent(&out, raw, "", "  "); err != nil {
		return nil, err
	}
	out.WriteByte('\n')
	return out.Bytes(), nil
}

// merge is RFC 7386 MergePatch: objects merge key by key, null removes a
// key, anything else (arrays included) replaces.
func merge(target, patch any) any {
	po, ok := patch.(*object)
	if !ok {
		return patch
	}
	to, ok := target.(*object)
	if !ok {
		to = &object{vals: map[string]any{}}
	}
	for _, k := range po.keys {
		v := po.vals[k]
		if v == nil {
			to.remove(k)
			continue
		}
		to.set(k, merge(to.vals[k], v))
	}
	return to
}

// object is a JSON object that keeps the order of its keys.
type object struct {
	keys []string
	vals map[string]any
}

func (o *object) set(k string, v any) {
	if _, ok := o.vals[k]; !ok {
		o.keys = append(o.keys, k)
	}
	o.vals[k] = v
}

func (o *object) remove(k string) {
	if _, ok := o.vals[k]; !ok {
		return
	}
	delete(o.vals, k)
	for i, key := range o.keys {
		if key == k {
			o.keys = append(o.keys[:i], o.keys[i+1:]...)
			break
		}
	}
}

// MarshalJSON writes the keys in order.
func (o *object) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, k := range o.keys {
		if i > 0 {
			b.WriteByte(',')
		}
		kb, err := marshal(k)
		if err != nil {
			return nil, err
		}
		vb, err := marshal(o.vals[k])
		if err != nil {
			return nil, err
		}
		b.Write(kb)
		b.WriteByte(':')
		b.Write(vb)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// marshal is json.Marshal (HTML-escaping, as protoc-gen-openapiv2 writes).
func marshal(v any) ([]byte, error) { return json.Marshal(v) }

// decode reads one JSON value, objects as *object, numbers as json.Number.
func decode(data []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	v, err := value(dec)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("trailing data after the JSON value")
	}
	return v, nil
}

func value(dec *json.Decoder) (any, error) {
	t, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch t {
	case json.Delim('{'):
		o := &object{vals: map[string]any{}}
		for dec.More() {
			kt, err := dec.Token()
			if err != nil {
				return nil, err
			}
			k := kt.(string)
			if _, dup := o.vals[k]; dup {
				return nil, fmt.Errorf("duplicate key %q", k)
			}
			v, err := value(dec)
			if err != nil {
				return nil, err
			}
			o.set(k, v)
		}
		_, err := dec.Token() // '}'
		return o, err
	case json.Delim('['):
		a := []any{}
		for dec.More() {
			v, err := value(dec)
			if err != nil {
				return nil, err
			}
			a = append(a, v)
		}
		_, err := dec.Token() // ']'
		return a, err
	}
	return t, nil
}
