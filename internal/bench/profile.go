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
	return func() {
		pprof.StopCPUProfile()
		f.Close()
		fmt.Fprintf(progress, "profile %s: wrote %s\n", name, path)
	}
}
