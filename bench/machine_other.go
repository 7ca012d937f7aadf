//go:build !linux

package main

func filesystemType(string) string { return "unknown" }
