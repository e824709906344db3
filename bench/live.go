package main

import (
	"os"
	"os/signal"
	"sync"
	"syscall"
)

// live holds what a run started outside this process, nginx servers and
// child processes, with the function that stops each, so that an
// interrupted run (Ctrl-C, SIGTERM) stops them too instead of leaving
// them behind. Every path that starts one also stops it itself; this is
// only for the signal.
var live = struct {
	sync.Mutex
	next  int
	stops map[int]func()
}{stops: map[int]func(){}}

// track registers stop to be run if the program is interrupted, and
// returns the function that unregisters it.
func track(stop func()) (untrack func()) {
	live.Lock()
	defer live.Unlock()
	id := live.next
	live.next++
	live.stops[id] = stop
	return func() {
		live.Lock()
		defer live.Unlock()
		delete(live.stops, id)
	}
}

// stopLive runs every registered stop, once.
func stopLive() {
	live.Lock()
	stops := live.stops
	live.stops = map[int]func(){}
	live.Unlock()
	var wg sync.WaitGroup
	for _, stop := range stops {
		spawn(&wg, stop)
	}
	wg.Wait()
}

// stopOnSignal makes SIGINT and SIGTERM stop what the run started, then
// exit the program with status 130.
func stopOnSignal() {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sig
		stopLive()
		os.Exit(130)
	}()
}
