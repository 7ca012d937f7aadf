package main

import (
	"fmt"
	"image/color"
	"math"
	"os"
	"path/filepath"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/text"
	"gonum.org/v1/plot/vg"
)

// Chart files written by WritePlots.
const (
	ChartThroughput = "throughput.png"
	ChartSizes      = "throughput_sizes.png"
	ChartLatency    = "latency.png"
	ChartRotation   = "latency_rotation.png"
)

// WritePlots writes the charts into dir: throughput by sink and number of
// goroutines, MB/s by sink and record size, latency percentiles by sink,
// and latency percentiles with small segments (rotation). A chart whose
// rows were not run is left out. It returns the files written.
func (rep *Report) WritePlots(dir string) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("bench: plot directory: %w", err)
	}
	// Sans-serif reads better at small sizes than gonum's default serif.
	sans := font.Font{Typeface: "Liberation", Variant: "Sans"}
	plot.DefaultFont, plotter.DefaultFont = sans, sans
	var written []string
	save := func(name string, p *plot.Plot, rows int, series int) error {
		if p == nil {
			return nil
		}
		h := vg.Length(rows*series)*9*vg.Points(1) + vg.Length(rows)*8*vg.Points(1) + 1.6*vg.Inch
		path := filepath.Join(dir, name)
		if err := p.Save(9*vg.Inch, h, path); err != nil {
			return fmt.Errorf("bench: chart %s: %w", path, err)
		}
		written = append(written, path)
		return nil
	}

	// Throughput by sink, one bar per goroutine count.
	var cats []string
	var series []barSeries
	for _, g := range []int{1, 2, 4, 8} {
		sc := "goroutines"
		if g == 1 {
			sc = "sizes"
		}
		rows := rep.rows(sc, SizeJSON, g, false)
		if len(rows) == 0 {
			continue
		}
		if cats == nil {
			cats = names(rows)
		}
		s := barSeries{name: fmt.Sprintf("%d goroutine%s", g, plural(g))}
		for _, c := range cats {
			r := byName(rows, c)
			s.values = append(s.values, r.RecordsPerS/1e6)
			s.labels = append(s.labels, countHuman(r.RecordsPerS))
		}
		series = append(series, s)
	}
	if len(series) > 0 {
		p, err := barChart(fmt.Sprintf("Records per second, %s records (more is better)", sizeName(SizeJSON)), "million records/s", cats, series, nil)
		if err != nil {
			return written, err
		}
		if err := save(ChartThroughput, p, len(cats), len(series)); err != nil {
			return written, err
		}
	}

	// MB/s by sink and record size.
	cats, series = nil, nil
	for _, size := range []int{SizeSmall, SizeJSON, SizeLarge} {
		rows := rep.rows("sizes", size, 1, false)
		if len(rows) == 0 {
			continue
		}
		if cats == nil {
			cats = names(rows)
		}
		s := barSeries{name: sizeName(size)}
		for _, c := range cats {
			r := byName(rows, c)
			s.values = append(s.values, r.MBPerS)
			s.labels = append(s.labels, mbHuman(r.MBPerS)+" MB/s")
		}
		series = append(series, s)
	}
	if len(series) > 0 {
		p, err := barChart("Throughput by record size, 1 goroutine (more is better)", "MB/s", cats, series, nil)
		if err != nil {
			return written, err
		}
		if err := save(ChartSizes, p, len(cats), len(series)); err != nil {
			return written, err
		}
	}

	// Latency percentiles.
	for _, l := range []struct {
		file, scenario, title string
	}{
		{ChartLatency, "sizes", fmt.Sprintf("Write latency, %s records, 1 goroutine, 64 MiB segments (less is better)", sizeName(SizeJSON))},
		{ChartRotation, "rotation", fmt.Sprintf("Write latency with 1 MiB segments: rotation every ~5,000 records (less is better)")},
	} {
		rows := rep.rows(l.scenario, SizeJSON, 1, false)
		if len(rows) == 0 {
			continue
		}
		cats = names(rows)
		series = nil
		for _, q := range []struct {
			name string
			get  func(*Result) int64
		}{
			{"p50", func(r *Result) int64 { return r.P50 }},
			{"p99", func(r *Result) int64 { return r.P99 }},
			{"p99.9", func(r *Result) int64 { return r.P999 }},
			{"max", func(r *Result) int64 { return r.Max }},
		} {
			s := barSeries{name: q.name}
			for _, c := range cats {
				v := q.get(byName(rows, c))
				s.values = append(s.values, math.Log10(math.Max(float64(v), 1)))
				s.labels = append(s.labels, durHuman(v))
			}
			series = append(series, s)
		}
		p, err := barChart(l.title, "latency of one Write (log scale)", cats, series, logTicker{durLabel})
		if err != nil {
			return written, err
		}
		if err := save(l.file, p, len(cats), len(series)); err != nil {
			return written, err
		}
	}
	return written, nil
}

// rows returns the measured rows of a scenario with the given record size
// and goroutines, in table order.
func (rep *Report) rows(scenario string, size, g int, encode bool) []*Result {
	var out []*Result
	for _, r := range rep.Results {
		if r.Scenario == scenario && r.Size == size && r.Goroutines == g && r.Encode == encode && r.Reps > 0 {
			out = append(out, r)
		}
	}
	return out
}

func names(rows []*Result) []string {
	var n []string
	for _, r := range rows {
		n = append(n, r.Name)
	}
	return n
}

// byName returns the row named n, or an empty row (a sink that failed in
// one group but not another is drawn as zero).
func byName(rows []*Result, n string) *Result {
	for _, r := range rows {
		if r.Name == n {
			return r
		}
	}
	return &Result{Name: n}
}

type barSeries struct {
	name   string
	values []float64
	labels []string
}

// Colours that stay apart in print and for the common colour blindnesses
// (Okabe and Ito).
var barColors = []color.Color{
	color.RGBA{0, 114, 178, 255},
	color.RGBA{230, 159, 0, 255},
	color.RGBA{0, 158, 115, 255},
	color.RGBA{204, 121, 167, 255},
	color.RGBA{86, 180, 233, 255},
	color.RGBA{213, 94, 0, 255},
}

// barChart draws horizontal grouped bars: one group per category (the
// first at the top), one bar per series, each labelled with its value.
// With ticks, values are log10 of the quantity and ticks labels them.
func barChart(title, xlabel string, cats []string, series []barSeries, ticks plot.Ticker) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = title
	p.Title.TextStyle.Font.Size = 13
	p.X.Label.Text = xlabel
	p.Legend.Top = true
	p.Legend.Left = false
	p.Legend.XOffs = -4
	// Categories bottom-up on the Y axis: reverse, so the first is on top.
	rev := make([]string, len(cats))
	for i, c := range cats {
		rev[len(cats)-1-i] = c
	}
	p.Add(plotter.NewGrid()) // first, so that bars and labels are drawn over it
	barW := vg.Points(9)
	n := len(series)
	maxV := 0.0
	for i, s := range series {
		vals := make(plotter.Values, len(cats))
		xys := make(plotter.XYs, len(cats))
		for j := range cats {
			vals[len(cats)-1-j] = s.values[j]
			xys[len(cats)-1-j] = plotter.XY{X: s.values[j], Y: float64(len(cats) - 1 - j)}
			maxV = math.Max(maxV, s.values[j])
		}
		b, err := plotter.NewBarChart(vals, barW)
		if err != nil {
			return nil, err
		}
		b.Horizontal = true
		b.Color = barColors[i%len(barColors)]
		b.LineStyle.Width = 0
		// Series top to bottom within a group, in legend order.
		b.Offset = barW * vg.Length(float64(n-1)/2-float64(i))
		p.Add(b)
		p.Legend.Add(s.name, b)

		labels := make([]string, len(cats))
		for j := range cats {
			labels[len(cats)-1-j] = s.labels[j]
		}
		l, err := plotter.NewLabels(plotter.XYLabels{XYs: xys, Labels: labels})
		if err != nil {
			return nil, err
		}
		for k := range l.TextStyle {
			l.TextStyle[k].Font.Size = 7
			l.TextStyle[k].YAlign = text.YCenter
		}
		l.Offset = vg.Point{X: 3, Y: b.Offset}
		p.Add(l)
	}
	p.NominalY(rev...)
	p.X.Min = 0
	p.X.Max = maxV * 1.22 // room for the labels and the legend
	if ticks != nil {
		p.X.Tick.Marker = ticks
		p.X.Max = math.Ceil(maxV) + 1.3
	}
	return p, nil
}

// logTicker labels an axis whose values are log10 of a quantity.
type logTicker struct{ label func(float64) string }

func (t logTicker) Ticks(min, max float64) []plot.Tick {
	var ts []plot.Tick
	for e := math.Floor(min); e <= math.Ceil(max); e++ {
		if e >= min && e <= max {
			ts = append(ts, plot.Tick{Value: e, Label: t.label(math.Pow(10, e))})
		}
		for k := 2.0; k < 10; k++ {
			if v := e + math.Log10(k); v >= min && v <= max {
				ts = append(ts, plot.Tick{Value: v})
			}
		}
	}
	return ts
}

func durLabel(ns float64) string {
	switch {
	case ns >= 1e9:
		return fmt.Sprintf("%.0f s", ns/1e9)
	case ns >= 1e6:
		return fmt.Sprintf("%.0f ms", ns/1e6)
	case ns >= 1e3:
		return fmt.Sprintf("%.0f µs", ns/1e3)
	}
	return fmt.Sprintf("%.0f ns", ns)
}
