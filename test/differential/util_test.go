package differential

import "slices"

func slicesSorted(s []string) []string { slices.Sort(s); return s }
