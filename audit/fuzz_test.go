package audit

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// FuzzVerify feeds arbitrary file contents to the chain verifier, split
// into one or two files: it must never panic, never keep more problems
// than its bound, and report an intact chain only for lines that are all
// records.
func FuzzVerify(f *testing.F) {
	golden, err := os.ReadFile(filepath.Join("testdata", "chain-golden.jsonl"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(golden, 0)
	f.Add(golden, len(golden)/2)
	f.Add(golden[:len(golden)-30], 0)
	f.Add(bytes.Replace(golden, []byte(`"seq":2`), []byte(`"seq":3`), 1), 0)
	f.Add([]byte("{}\n\n{\"seq\":1}\n"), 1)
	f.Add([]byte(`{"seq":1,"prev":"0000000000000000000000000000000000000000000000000000000000000000","event":null,"hash":"aa84aa48e736e63981766cac5d5eeec7d9ee743e70b7dc84ee301e2673e1a393"}`), 0)
	f.Fuzz(func(t *testing.T, data []byte, split int) {
		if split < 0 || split > len(data) {
			split = 0
		}
		v := newVerifier(VerifyConfig{MaxLine: 1 << 16, MaxProblems: 10, Head: &Anchor{Seq: 3, Hash: "x"}})
		if err := v.file("a", bytes.NewReader(data[:split])); err != nil {
			t.Fatal(err)
		}
		if err := v.file("b", bytes.NewReader(data[split:])); err != nil {
			t.Fatal(err)
		}
		rep := v.finish()
		if len(rep.Problems) > 10 {
			t.Fatalf("%d problems kept, bound 10", len(rep.Problems))
		}
		lines := bytes.Count(data, []byte("\n")) + 2
		if rep.Records > lines || rep.Events > rep.Records {
			t.Fatalf("counted %d records, %d events in %d lines", rep.Records, rep.Events, lines)
		}
		_ = rep.Err()
	})
}

// FuzzReadExchanges feeds arbitrary session files to the replay loader.
func FuzzReadExchanges(f *testing.F) {
	f.Add([]byte(`{"session_id":"s","time":"2026-11-25T22:00:00Z","request":{"method":"GET","body":{"size":0}},"response":{"status":200,"body":{"text":"x","size":1}}}` + "\n"))
	f.Add([]byte("\n\n{"))
	f.Fuzz(func(t *testing.T, data []byte) {
		xs, err := readExchanges(bytes.NewReader(data))
		if err == nil {
			for _, x := range xs {
				_ = x.Response.Body.Bytes()
			}
		}
	})
}
