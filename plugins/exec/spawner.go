package main

import (
	"os/exec"
	"runtime"
	"sync"
)

// Every child is started with Pdeathsig = SIGKILL, so that it dies with the
// plugin even when the plugin is SIGKILLed. Linux delivers that signal when
// the *thread* that forked the child exits, not the process (prctl(2)
// PR_SET_PDEATHSIG), and the Go runtime may end the thread a goroutine ran
// on. So every fork happens on one goroutine locked to its OS thread for the
// life of the process: that thread exits only with the process.

// spawner starts commands on its locked thread.
type spawner struct {
	reqs chan spawnReq
}

type spawnReq struct {
	cmd *exec.Cmd
	err chan<- error
}

var (
	theSpawner     *spawner
	theSpawnerOnce sync.Once
)

// processSpawner returns the process's spawner, starting its thread once.
func processSpawner() *spawner {
	theSpawnerOnce.Do(func() {
		theSpawner = &spawner{reqs: make(chan spawnReq)}
		go theSpawner.loop()
	})
	return theSpawner
}

// loop never returns and never unlocks: if it did, the thread would exit
// and take every child with it.
func (s *spawner) loop() {
	runtime.LockOSThread()
	for r := range s.reqs {
		r.err <- r.cmd.Start()
	}
}

// start runs cmd.Start on the spawner's thread.
func (s *spawner) start(cmd *exec.Cmd) error {
	errc := make(chan error, 1)
	s.reqs <- spawnReq{cmd: cmd, err: errc}
	return <-errc
}
