//go:build race

package main

// Under -race, build the bot with -race as well, so the smoke test links packages the race
// build of the whole module has already compiled.
func init() { raceBuildFlags = []string{"-race"} }
