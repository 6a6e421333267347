//go:build tools

// Pins the helm CLI (helm.sh/helm/v4/cmd/helm) in this module's go.mod/go.sum, so build.sh
// builds exactly that version from the module proxy.
package tools

import _ "helm.sh/helm/v4/cmd/helm"
