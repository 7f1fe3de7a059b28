package testmodel

import (
	"errors"
	"fmt"
)

// Opset bounds accepted by Generate. Opsets 14 to 17 take the axes of
// ReduceMean as an attribute; from 18 on they are an input.
const (
	MinOpset = 14
	MaxOpset = 21
)

// ErrConfig is the prefix of every configuration error.
var ErrConfig = errors.New("testmodel: invalid config")

// Config describes a generated test model. Zero values of the optional fields
// take the defaults documented on each field.
type Config struct {
	Layers       int // encoder layers, >= 1
	Hidden       int // hidden size, a multiple of Heads
	Heads        int // attention heads, >= 1
	Intermediate int // feed-forward size; default 4*Hidden
	MaxPositions int // position embeddings; default 512
	TypeVocab    int // token type embeddings; default 2
	Seed         uint64
	Opset        int // ONNX opset of the default domain; default 14, 14..21 accepted
	// FP16 makes the logits output float16: the float32 logits pass through
	// a final Cast to FLOAT16, as in mixed-precision exports whose outputs
	// are float16. Weights and every other computation stay float32, so the
	// oracle follows the model: its float64 logits rounded to float16.
	FP16 bool
}

// withDefaults returns cfg with the optional fields filled in and checks it.
func (cfg Config) withDefaults() (Config, error) {
	if cfg.Intermediate == 0 {
		cfg.Intermediate = 4 * cfg.Hidden
	}
	if cfg.MaxPositions == 0 {
		cfg.MaxPositions = 512
	}
	if cfg.TypeVocab == 0 {
		cfg.TypeVocab = 2
	}
	if cfg.Opset == 0 {
		cfg.Opset = 14
	}
	switch {
	case cfg.Layers < 1:
		return cfg, fmt.Errorf("%w: Layers %d, want >= 1", ErrConfig, cfg.Layers)
	case cfg.Hidden < 1:
		return cfg, fmt.Errorf("%w: Hidden %d, want >= 1", ErrConfig, cfg.Hidden)
	case cfg.Heads < 1:
		return cfg, fmt.Errorf("%w: Heads %d, want >= 1", ErrConfig, cfg.Heads)
	case cfg.Hidden%cfg.Heads != 0:
		return cfg, fmt.Errorf("%w: Hidden %d is not a multiple of Heads %d", ErrConfig, cfg.Hidden, cfg.Heads)
	case cfg.Intermediate < 1:
		return cfg, fmt.Errorf("%w: Intermediate %d, want >= 1", ErrConfig, cfg.Intermediate)
	case cfg.MaxPositions < 1:
		return cfg, fmt.Errorf("%w: MaxPositions %d, want >= 1", ErrConfig, cfg.MaxPositions)
	case cfg.TypeVocab < 1:
		return cfg, fmt.Errorf("%w: TypeVocab %d, want >= 1", ErrConfig, cfg.TypeVocab)
	case cfg.Opset < MinOpset || cfg.Opset > MaxOpset:
		return cfg, fmt.Errorf("%w: Opset %d, want %d..%d", ErrConfig, cfg.Opset, MinOpset, MaxOpset)
	}
	return cfg, nil
}

// irVersion is the ONNX IR version released with the given opset.
func irVersion(opset int) int64 {
	switch {
	case opset == 14:
		return 7
	case opset <= 18:
		return 8
	case opset <= 20:
		return 9
	default:
		return 10
	}
}
