// Package policy will decide, for each authenticated call, whether it is
// allowed, denied or held for a human approval, using CEL rules over the
// caller and the AWS action, resource and parameters.
//
// It is not implemented yet; the awsproxy handler already exposes the stage
// hook (awsproxy.Stage) where the policy engine plugs in.
package policy
