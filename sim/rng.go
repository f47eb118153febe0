package sim

import "math"

// Randomness in the simulator is a pure function of (seed, purpose, keys):
// a draw is the splitmix64 hash of its key, not the next number of a shared
// stream. So the service time of request 17's first visit to orchestrator 3
// is the same whichever policy sends it there and whatever happened before,
// and policies are compared on the same luck.

// Purposes of the hashed draws; each is an independent stream.
const (
	purposeService uint64 = iota + 1
	purposeFail
	purposeArrival
	purposeClass
)

func splitmix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// draw hashes a seed, a purpose and three keys into 64 random bits.
func draw(seed int64, purpose, a, b, c uint64) uint64 {
	h := splitmix(uint64(seed) ^ splitmix(purpose))
	h = splitmix(h ^ a)
	h = splitmix(h ^ (b + 0x632be59bd9b4e019))
	return splitmix(h ^ (c + 0x8cb92ba72f3d8dd7))
}

// unit maps 64 random bits to a float64 strictly inside (0, 1).
func unit(h uint64) float64 {
	return (float64(h>>11) + 0.5) / (1 << 53)
}

// normal maps 64 random bits to a standard normal by inverting the CDF.
func normal(h uint64) float64 {
	return math.Sqrt2 * math.Erfinv(2*unit(h)-1)
}

// exponential maps 64 random bits to an Exp(1) variate.
func exponential(h uint64) float64 {
	return -math.Log(unit(h))
}
