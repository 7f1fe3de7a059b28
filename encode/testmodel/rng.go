package testmodel

import "math"

// rng is a small deterministic pseudo-random generator: splitmix64 for the
// uniform stream and Box-Muller for normal deviates. Every tensor row gets its
// own rng (see rowRNG), so values do not depend on generation order or on the
// number of goroutines that fill a tensor.
type rng struct {
	state    uint64
	spare    float64
	hasSpare bool
}

// mix64 is the splitmix64 finaliser, used both for the stream and for seeding.
func mix64(z uint64) uint64 {
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// fnv64 hashes a tensor name (FNV-1a) so that each tensor has its own stream.
func fnv64(s string) uint64 {
	h := uint64(0xcbf29ce484222325)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 0x100000001b3
	}
	return h
}

// tensorSeed derives the seed of one named tensor from the model seed.
func tensorSeed(seed uint64, name string) uint64 {
	return mix64(mix64(seed+0x9e3779b97f4a7c15) ^ fnv64(name))
}

// rowRNG returns the generator of row `row` of a tensor.
func rowRNG(tseed uint64, row int) *rng {
	return &rng{state: mix64(tseed ^ mix64(uint64(row)+0x632be59bd9b4e019))}
}

func (r *rng) next() uint64 {
	r.state += 0x9e3779b97f4a7c15
	return mix64(r.state)
}

// uniform returns a float64 in [0, 1).
func (r *rng) uniform() float64 {
	return float64(r.next()>>11) * (1.0 / (1 << 53))
}

// normal returns a standard normal deviate (Box-Muller, both values used).
func (r *rng) normal() float64 {
	if r.hasSpare {
		r.hasSpare = false
		return r.spare
	}
	u1 := 1 - r.uniform() // (0, 1]: log is finite
	u2 := r.uniform()
	rad := math.Sqrt(-2 * math.Log(u1))
	s, c := math.Sincos(2 * math.Pi * u2)
	r.spare = rad * s
	r.hasSpare = true
	return rad * c
}
