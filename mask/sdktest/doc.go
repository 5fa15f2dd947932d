// Package sdktest holds the end-to-end tests of package mask: real AWS SDK
// for Go v2 clients call a reverse proxy on 127.0.0.1 whose ModifyResponse
// hook masks canned AWS responses with mask.Masker.MaskResponse, and check
// that every masked response parses and shows masked values. It has no API;
// the tests live apart so that mask's own test and fuzz binaries stay small.
package sdktest
