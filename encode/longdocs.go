package encode

import (
	"fmt"
	"strconv"
)

// Long-document modes (--long-docs).
const (
	LongDocsTruncate = "truncate"
	LongDocsWindow   = "window"
)

// LongDocs says what happens to documents longer than the max length.
type LongDocs struct {
	// Mode is LongDocsTruncate ("" too: the text past the max length is not
	// seen) or LongDocsWindow (the text is cut into overlapping windows,
	// each encoded like a document, and their vectors combined by Agg).
	Mode string
	// Window is a window's length in tokens, specials included (0: the max
	// length); Stride is how many tokens each window starts after the one
	// before (0: half a window's content, so windows overlap by half).
	Window, Stride int
	// MaxWindows bounds a document's windows (0: no bound); the text past
	// them is not seen, and the row is marked truncated.
	MaxWindows int
	Agg        WindowAgg
	// Passages writes one row per window, with ids "docid#k" (k from 0),
	// instead of one row per document.
	Passages bool
}

// DefaultMaxWindows bounds the windows of a document unless asked otherwise:
// enough for about 8,000 tokens at the default window and stride.
const DefaultMaxWindows = 32

// Windowed reports whether documents are cut into windows.
func (l LongDocs) Windowed() bool { return l.Mode == LongDocsWindow }

// Resolve fills the defaults for a model of maxLength tokens with specials
// special tokens per sequence (echo: each window holds its text twice), and
// checks the settings.
func (l LongDocs) Resolve(maxLength, specials int, echo bool) (LongDocs, error) {
	switch l.Mode {
	case "", LongDocsTruncate:
		l.Mode = LongDocsTruncate
		if l.Window != 0 || l.Stride != 0 || l.Passages {
			return l, fmt.Errorf("%w: --window, --stride and --emit passages need --long-docs window", ErrSettings)
		}
		return l, nil
	case LongDocsWindow:
	default:
		return l, fmt.Errorf("%w: --long-docs %q: want truncate or window", ErrSettings, l.Mode)
	}
	if l.Window == 0 {
		l.Window = maxLength
	}
	if l.Window > maxLength {
		return l, fmt.Errorf("%w: --window %d exceeds the max length %d", ErrSettings, l.Window, maxLength)
	}
	content := l.Window - specials
	if echo {
		content /= 2
	}
	if content < 1 {
		return l, fmt.Errorf("%w: --window %d leaves no room for text besides %d special tokens", ErrSettings, l.Window, specials)
	}
	if l.Stride == 0 {
		l.Stride = max(content/2, 1)
	}
	switch {
	case l.Stride < 0:
		return l, fmt.Errorf("%w: --stride %d: must be positive", ErrSettings, l.Stride)
	case l.Stride > content:
		return l, fmt.Errorf("%w: --stride %d exceeds a window's %d text tokens: text between windows would never be seen", ErrSettings, l.Stride, content)
	case l.MaxWindows < 0:
		return l, fmt.Errorf("%w: --max-windows %d: must be >= 0 (0: no bound)", ErrSettings, l.MaxWindows)
	}
	return l, nil
}

// Settings returns the manifest settings and shard metadata of windows
// (truncation, the default, records none).
func (l LongDocs) Settings() map[string]string {
	emit := "documents"
	if l.Passages {
		emit = "passages"
	}
	return map[string]string{
		"long_docs":   LongDocsWindow,
		"window":      strconv.Itoa(l.Window),
		"stride":      strconv.Itoa(l.Stride),
		"max_windows": strconv.Itoa(l.MaxWindows),
		"window_agg":  l.Agg.String(),
		"emit":        emit,
	}
}

// Part is what the model sees of a document: all of it, or one window.
type Part struct {
	IDs      []int32 // with the template's special tokens
	PoolFrom int     // echo: the first position of the second copy; else 0
}

// Prepare tokenizes text into the parts the model runs: one (truncated to
// the max length) or, with windows, one per window. truncated reports text
// that no part covers.
func (m *Model) Prepare(text string, l LongDocs) (parts []Part, truncated bool) {
	tok := m.Tokenizer
	specials := tok.NumSpecialTokens()
	size := m.MaxLength - specials // text tokens per part
	if l.Windowed() {
		size = l.Window - specials
	}
	if m.Echo {
		size /= 2
	}
	limit := size // text tokens to tokenize; 0: all
	if l.Windowed() {
		limit = WindowsSpan(size, l.Stride, l.MaxWindows)
	}
	maxLength := 0
	if limit > 0 {
		maxLength = limit + specials
	}
	enc := tok.Encode(text, maxLength)
	if !l.Windowed() && !m.Echo {
		return []Part{{IDs: enc.IDs}}, enc.Truncated
	}
	content := tok.Content(enc)
	prefix, suffix := tok.Prefix(), tok.Suffix()
	spans := [][2]int{{0, len(content)}}
	if l.Windowed() {
		spans = Windows(len(content), size, l.Stride, l.MaxWindows)
		truncated = enc.Truncated || spans[len(spans)-1][1] < len(content)
	} else {
		truncated = enc.Truncated
	}
	parts = make([]Part, len(spans))
	for k, sp := range spans {
		text := content[sp[0]:sp[1]]
		copies := 1
		if m.Echo && len(text) > 0 {
			copies = 2
		}
		ids := make([]int32, 0, len(prefix)+copies*len(text)+len(suffix))
		ids = append(ids, prefix...)
		ids = append(ids, text...)
		p := Part{}
		if copies == 2 {
			p.PoolFrom = len(ids)
			ids = append(ids, text...)
		}
		p.IDs = append(ids, suffix...)
		parts[k] = p
	}
	return parts, truncated
}
