package serviceapi

// PrivXUnsupportedPatterns lists the patterns of PrivX features Gatehouse refuses, for the external tests.
func PrivXUnsupportedPatterns() []string {
	out := make([]string, 0, len(privxUnsupported))
	for _, u := range privxUnsupported {
		out = append(out, u.pattern)
	}
	return out
}
