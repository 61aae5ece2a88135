//go:build tools

// Package tools pins the versions of the build tools this repository uses.
// It is a separate module so that their (large) dependency graphs never mix
// with the provider's. scripts/install-tools.sh builds each binary from this
// module into a cache outside the repository.
package tools

import (
	// Documentation generation (make docs, make docs-check).
	_ "github.com/hashicorp/terraform-plugin-docs/cmd/tfplugindocs"

	// Linting (make lint).
	_ "github.com/golangci/golangci-lint/v2/cmd/golangci-lint"

	// Unreachable functions, tests included (make lint).
	_ "golang.org/x/tools/cmd/deadcode"

	// Release configuration check and releases (make release-check).
	_ "github.com/goreleaser/goreleaser/v2"
)
