// Package papayd holds what the service embeds from the repository root:
// the OpenAPI description generated from the protos.
package papayd

import _ "embed"

// OpenAPI is the merged OpenAPI v2 description of the JSON API, generated
// by `make generate` into gen/openapi.
//
//go:embed gen/openapi/papay.swagger.json
var OpenAPI []byte
