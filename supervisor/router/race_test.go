//go:build race

package router

// raceEnabled: the race detector grows stacks and heap, so memory bounds
// do not hold under it.
const raceEnabled = true
