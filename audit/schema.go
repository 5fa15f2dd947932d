package audit

import (
	"bytes"
	_ "embed"
)

//go:embed event.schema.json
var schemaJSON []byte

// Schema returns the JSON Schema (draft 2020-12) of the event format of
// Version: every member, its type and its meaning. Tests check that every
// member this package writes is in it and that events validate.
func Schema() []byte { return bytes.Clone(schemaJSON) }
