//go:build race

package main

// raceEnabled: under the race detector sync.Pool drops items on purpose, so
// zerolog's pooled events allocate; the encoding groups' allocs/op then
// say nothing about the sinks.
const raceEnabled = true
