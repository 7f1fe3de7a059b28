package encode

import "errors"

// ErrBadInput marks failures caused by the input data or the model files
// (retrying will not help); the CLI maps it to its own exit code.
var ErrBadInput = errors.New("bad input")

// ErrSettings marks settings that cannot work together (for example a batch
// token budget smaller than the max length); the CLI reports bad usage.
var ErrSettings = errors.New("bad settings")
