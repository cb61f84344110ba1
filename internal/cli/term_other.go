//go:build !linux && !darwin

package cli

import (
	"errors"
	"os"
)

// isTerminal is false where the CLI cannot turn echo off, so login asks for --password-stdin or
// GATEHOUSE_PASSWORD instead of prompting.
func isTerminal(*os.File) bool { return false }

func readSecretLine(*os.File) (string, error) {
	return "", errors.New("cannot read a password without echo on this system; use --password-stdin or GATEHOUSE_PASSWORD")
}
