// Package audit will record one event per call, tied to the calling
// identity, through pluggable sinks.
//
// It is not implemented yet; the awsproxy handler already reports each
// finished call through awsproxy.Config.OnDone, where audit plugs in.
package audit
