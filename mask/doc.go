// Package mask will rewrite JSON and XML response bodies by field path and
// by content detectors so that secrets never reach the caller.
//
// It is not implemented yet; the awsproxy handler already exposes the
// response hook (awsproxy.Config.ModifyResponse) where masking plugs in.
package mask
