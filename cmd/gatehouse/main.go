// Command gatehouse is the Gatehouse server and its admin client in one binary.
package main

import "github.com/gatehouse-dev/gatehouse/internal/cli"

func main() { cli.Main() }
