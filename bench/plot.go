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
	ChartFollow     = "latency_follow.png"
)

// WritePlots writes the charts into dir: throughput by sink and number of
// goroutines, MB/s by sink and record size, latency percentiles by sink,
// latency percentiles with small segments (rotation), and writer-to-reader
// latency across processes. A chart whose rows were not run is left out.
// It returns the files written.
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
		h := max(vg.Length(rows*series)*9*vg.Points(1)+vg.Length(rows)*8*vg.Points(1)+1.6*vg.Inch, 3.5*vg.Inch)
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
			s.values = append(s.values, r.RecordsPerS)
			s.labels = append(s.labels, countHuman(r.RecordsPerS))
		}
		series = append(series, s)
	}
	if len(series) > 0 {
		p, err := barChart(fmt.Sprintf("Records per second, %s records (more is better)", sizeName(SizeJSON)), "records/s (log scale)", cats, series,
			&logAxis{floor: 1e3, label: countLabel})
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
		p, err := barChart("Throughput by record size, 1 goroutine (more is better)", "MB/s (log scale)", cats, series,
			&logAxis{floor: 0.1, label: mbLabel})
		if err != nil {
			return written, err
		}
		if err := save(ChartSizes, p, len(cats), len(series)); err != nil {
			return written, err
		}
	}

	// Latency percentiles.
	for _, l := range []struct {
		file, scenario, title, xlabel string
	}{
		{ChartLatency, "sizes", fmt.Sprintf("Write latency, %s records, 1 goroutine, 64 MiB segments (less is better)", sizeName(SizeJSON)), "latency of one Write (log scale)"},
		{ChartRotation, "rotation", "Write latency with 1 MiB segments: rotation every ~5,000 records (less is better)", "latency of one Write (log scale)"},
		{ChartFollow, "follow", "Writer to reader in another process, by the writer's pace (less is better)", "record's time stamp to the reader's Next (log scale)"},
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
				s.values = append(s.values, float64(v))
				s.labels = append(s.labels, durHuman(v))
			}
			series = append(series, s)
		}
		p, err := barChart(l.title, l.xlabel, cats, series, &logAxis{floor: 1, label: durLabel})
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

// logAxis is a logarithmic value axis whose bars start at floor.
type logAxis struct {
	floor float64
	label func(float64) string // tick label of a value
}

// pos maps a value to the axis: decades above the floor.
func (a *logAxis) pos(v float64) float64 {
	return max(math.Log10(max(v, a.floor))-math.Log10(a.floor), 0)
}

// barChart draws horizontal grouped bars: one group per category (the
// first at the top), one bar per series, each labelled with its value.
// With log, the value axis is logarithmic from log.floor (gonum's log
// scale cannot draw bars, which start at zero: the bars are drawn in
// decades above the floor and the ticks labelled with values).
func barChart(title, xlabel string, cats []string, series []barSeries, log *logAxis) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = title
	p.Title.TextStyle.Font.Size = 13
	p.Title.Padding = vg.Points(6)
	p.X.Label.Text = xlabel
	p.Legend.Top = false // bottom right: the top rows carry the longest bars
	p.Legend.Left = false
	p.Legend.XOffs = -4
	p.Add(plotter.NewGrid()) // first, so that bars and labels are drawn over it
	// Categories bottom-up on the Y axis: reverse, so the first is on top.
	rev := make([]string, len(cats))
	for i, c := range cats {
		rev[len(cats)-1-i] = c
	}
	barW := vg.Points(9)
	n := len(series)
	maxV := 0.0
	for i, s := range series {
		vals := make(plotter.Values, len(cats))
		xys := make(plotter.XYs, len(cats))
		for j := range cats {
			v := s.values[j]
			if log != nil {
				v = log.pos(v)
			}
			vals[len(cats)-1-j] = v
			xys[len(cats)-1-j] = plotter.XY{X: v, Y: float64(len(cats) - 1 - j)}
			maxV = math.Max(maxV, v)
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
	p.X.Max = maxV * 1.3 // room for the labels and the legend
	if log != nil {
		p.X.Tick.Marker = logTicker{floor: math.Log10(log.floor), label: log.label}
		p.X.Max = maxV + 1.4
	}
	return p, nil
}

// logTicker labels an axis whose positions are decades above 10^floor.
type logTicker struct {
	floor float64
	label func(float64) string
}

func (t logTicker) Ticks(min, max float64) []plot.Tick {
	var ts []plot.Tick
	for e := math.Floor(min); e <= math.Ceil(max); e++ {
		if e >= min && e <= max {
			ts = append(ts, plot.Tick{Value: e, Label: t.label(math.Pow(10, e+t.floor))})
		}
		for k := 2.0; k < 10; k++ {
			if v := e + math.Log10(k); v >= min && v <= max {
				ts = append(ts, plot.Tick{Value: v})
			}
		}
	}
	return ts
}

func countLabel(v float64) string {
	switch {
	case v >= 1e9:
		return fmt.Sprintf("%.0fG", v/1e9)
	case v >= 1e6:
		return fmt.Sprintf("%.0fM", v/1e6)
	case v >= 1e3:
		return fmt.Sprintf("%.0fk", v/1e3)
	}
	return fmt.Sprintf("%.0f", v)
}

func mbLabel(v float64) string {
	if v < 1 {
		return fmt.Sprintf("%.1f", v)
	}
	return fmt.Sprintf("%.0f", v)
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
