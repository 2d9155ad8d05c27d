//go:build race

package main

// raceEnabled says this test binary was built with -race, so a tapbot the tests build is too:
// it then reuses the packages already compiled for the test instead of compiling all again.
const raceEnabled = true
