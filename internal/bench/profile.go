package bench

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/pprof"
)

// startProfile starts a CPU profile of the whole process (the in-process API and workers
// included) into dir/cpu-<name>.pprof, and returns the function that ends it. With no dir,
// or when it cannot start, it does nothing and says why on progress.
func startProfile(dir, name string, progress io.Writer) (stop func()) {
	if dir == "" {
		return func() {}
	}
	path := filepath.Join(dir, "cpu-"+name+".pprof")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		fmt.Fprintf(progress, "profile %s: %v\n", name, err)
		return func() {}
	}
	f, err := os.Create(path)
	if err != nil {
		fmt.Fprintf(progress, "profile %s: %v\n", name, err)
		return func() {}
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		fmt.Fprintf(progress, "profile %s: %v\n", name, err)
		return func() {}
	}
	writeAllocs(filepath.Join(dir, "allocs-"+name+"-before.pprof"))
	return func() {
		pprof.StopCPUProfile()
		f.Close()
		writeAllocs(filepath.Join(dir, "allocs-"+name+".pprof"))
		fmt.Fprintf(progress, "profile %s: wrote %s\n", name, path)
	}
}

// writeAllocs writes the allocation profile so far; the difference between the one written
// at a profile's start and at its end is what was allocated in between (pprof -diff_base).
func writeAllocs(path string) {
	f, err := os.Create(path)
	if err != nil {
		return
	}
	defer f.Close()
	pprof.Lookup("allocs").WriteTo(f, 0)
}
