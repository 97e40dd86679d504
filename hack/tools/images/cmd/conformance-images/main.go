// Command conformance-images writes the OCI archives of the images the
// Kubernetes v1.37.2 conformance suite runs (see package recipe), skipping
// each archive whose inputs did not change. hack/images.sh --all builds its
// inputs and runs it.
//
//	conformance-images --output DIR --rootfs DIR --kubernetes-dir DIR \
//	  --agnhost BIN --nnp BIN --sample-apiserver BIN --etcd BIN [IMAGE...]
//
// It prints one line per archive: file, image name, size, and "built in
// Ns" or "up to date". --list prints "file<TAB>name" lines and writes
// nothing.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/skiff-dev/skiff/hack/tools/images/recipe"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "conformance-images:", err)
		os.Exit(1)
	}
}

func run() error {
	var in recipe.Inputs
	var output string
	list := flag.Bool("list", false, "print \"file<TAB>image name\" of each archive and write nothing")
	flag.StringVar(&output, "output", "_output/images", "directory to write the archives to")
	flag.StringVar(&in.Rootfs, "rootfs", "", "Debian rootfs directory (mmdebstrap)")
	flag.StringVar(&in.KubernetesDir, "kubernetes-dir", "", "the k8s.io/kubernetes@v1.37.2 module directory")
	flag.StringVar(&in.Agnhost, "agnhost", "", "static agnhost binary")
	flag.StringVar(&in.Nnp, "nnp", "", "static nnp binary (test/images/nonewprivs)")
	flag.StringVar(&in.SampleAPIServer, "sample-apiserver", "", "static sample-apiserver binary")
	flag.StringVar(&in.Etcd, "etcd", "", "static etcd binary")
	flag.Parse()

	if *list {
		// Names only: no input is read.
		for _, n := range recipe.Images {
			fmt.Printf("%s\t%s\n", recipe.ArchiveFile(n), n)
		}
		return nil
	}
	all, err := recipe.All(in)
	if err != nil {
		return err
	}
	selected, err := recipe.Select(all, flag.Args())
	if err != nil {
		return err
	}
	for _, r := range selected {
		start := time.Now()
		wrote, err := recipe.Write(output, r)
		if err != nil {
			return err
		}
		file := filepath.Join(output, r.File)
		st, err := os.Stat(file)
		if err != nil {
			return err
		}
		state := "up to date"
		if wrote {
			state = fmt.Sprintf("built in %.1fs", time.Since(start).Seconds())
		}
		fmt.Printf("%s\t%s\t%.1f MB\t%s\n", file, r.Image.Name, float64(st.Size())/1e6, state)
	}
	return nil
}
