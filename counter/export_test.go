package counter

// IncUnguarded is Counter.Inc without the fault guard: the bare atomic add
// the guarded one is measured against (BenchmarkInc). Tests only.
func (c Counter) IncUnguarded() { c.v.Add(1) }
