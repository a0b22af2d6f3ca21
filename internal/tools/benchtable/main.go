// Command benchtable turns the output of the project's benchmarks into the
// README's table: for every workload, the median ns/row of each
// implementation and the ratios of the pipeline to the plain loop (÷ seq)
// and to the hand-written channel pipeline (÷ chan), all from one run.
//
// Usage:
//
//	go test -run '^$' -bench . -benchmem -count 5 ./bench/ | go run ./internal/tools/benchtable
package main

import (
	"bufio"
	"fmt"
	"os"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// line matches "BenchmarkW1/impl=kisflow-2  10  123 ns/op  1.23 ns/row ...".
var line = regexp.MustCompile(`^Benchmark(\w+)/impl=([\w-]+?)(?:-\d+)?\s+\d+\s+.*?\s([\d.]+) ns/row`)

func main() {
	samples := map[string]map[string][]float64{} // workload -> impl -> ns/row
	var order []string
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		m := line.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		v, err := strconv.ParseFloat(m[3], 64)
		if err != nil {
			continue
		}
		w, impl := m[1], m[2]
		if samples[w] == nil {
			samples[w] = map[string][]float64{}
			order = append(order, w)
		}
		samples[w][impl] = append(samples[w][impl], v)
	}
	if len(order) == 0 {
		fmt.Fprintln(os.Stderr, "benchtable: no benchmark lines with ns/row on stdin")
		os.Exit(1)
	}
	fmt.Println("| workload | impl | ns/row (median) | ÷ seq | ÷ chan | runs |")
	fmt.Println("|---|---|---|---|---|---|")
	for _, w := range order {
		impls := samples[w]
		seq, chn := median(impls["seq"]), median(impls["chan"])
		names := make([]string, 0, len(impls))
		for impl := range impls {
			names = append(names, impl)
		}
		sort.Slice(names, func(i, j int) bool {
			return rank(names[i]) < rank(names[j]) || rank(names[i]) == rank(names[j]) && names[i] < names[j]
		})
		for _, impl := range names {
			m := median(impls[impl])
			fmt.Printf("| %s | %s | %s | %s | %s | %d |\n", w, impl, num(m), ratio(m, seq, impl == "seq"), ratio(m, chn, impl == "chan"), len(impls[impl]))
		}
	}
}

func rank(impl string) int {
	switch {
	case impl == "seq":
		return 0
	case impl == "chan":
		return 1
	}
	return 2
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func num(v float64) string {
	switch {
	case v == 0:
		return ""
	case v < 10:
		return strconv.FormatFloat(v, 'f', 2, 64)
	case v < 1000:
		return strconv.FormatFloat(v, 'f', 1, 64)
	}
	return strings.TrimSuffix(strconv.FormatFloat(v, 'f', 0, 64), ".")
}

func ratio(v, base float64, self bool) string {
	if self || v == 0 || base == 0 {
		return ""
	}
	return strconv.FormatFloat(v/base, 'f', 2, 64) + "x"
}
