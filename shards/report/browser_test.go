package report

import (
	"bytes"
	"context"
	"fmt"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/html"
)

// chromium returns the headless browser, or skips the test without one.
// Under CI (CI=true: .ci/run, where scripts/test.sh installs chromium) a
// missing browser fails the test instead: the check must not vanish.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("chromium is not installed, and CI=true: scripts/test.sh installs it under CI (scripts/install-chromium.sh, as root); see its log")
	}
	t.Skip("skipping: chromium is not installed (scripts/install-chromium.sh installs Debian's chromium, as root; bash scripts/test.sh --install runs it)")
	return ""
}

// runChromium runs headless chromium with its own profile directory and
// returns its standard output.
func runChromium(ctx context.Context, bin, profile string, args ...string) ([]byte, error) {
	base := []string{"--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--no-default-browser-check",
		"--disable-extensions", "--disable-background-networking", "--user-data-dir=" + profile}
	cmd := exec.CommandContext(ctx, bin, append(base, args...)...)
	cmd.Env = append(os.Environ(), "HOME="+profile)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("%s %s: %w\n%s", bin, strings.Join(args, " "), err, lastLines(stderr.String(), 10))
	}
	return stdout.Bytes(), nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// measureScript is appended to a copy of the report: it records each
// figure's rendered SVG size as an attribute, which --dump-dom then shows.
const measureScript = `<script>
for (const f of document.querySelectorAll("figure")) {
  const s = f.querySelector("svg");
  if (!s) continue;
  const r = s.getBoundingClientRect();
  f.setAttribute("data-rendered", Math.round(r.width) + "x" + Math.round(r.height));
}
</script>
`

// TestReportInChromium renders a report in headless Chromium: in the DOM it
// dumps, every figure holds an SVG that the browser laid out at a
// non-trivial size, and a screenshot of the page shows the plots (a good
// share of non-white pixels, among them the colours of the bars). With
// SPLASH_REPORT_SCREENSHOT=FILE.png the screenshot is kept there, to look at.
func TestReportInChromium(t *testing.T) {
	bin := chromium(t)
	fx := handShards()
	dir := writeFixture(t, fx, fixtureVocab())
	out := t.TempDir()
	page := filepath.Join(out, "report.html")
	if _, err := Write(context.Background(), dir, page, Options{}); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(page)
	if err != nil {
		t.Fatal(err)
	}
	measured := filepath.Join(out, "measured.html")
	instrumented := strings.Replace(string(data), "</body>", measureScript+"</body>", 1)
	if err := os.WriteFile(measured, []byte(instrumented), 0o644); err != nil {
		t.Fatal(err)
	}
	shot := filepath.Join(out, "report.png")

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	start := time.Now()
	var dom []byte
	var domErr, shotErr error
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		dom, domErr = runChromium(ctx, bin, t.TempDir(), "--dump-dom", "file://"+measured)
	}()
	go func() {
		defer wg.Done()
		_, shotErr = runChromium(ctx, bin, t.TempDir(), "--hide-scrollbars", "--window-size=1000,2600", "--screenshot="+shot, "file://"+page)
	}()
	wg.Wait()
	t.Logf("chromium: --dump-dom and --screenshot in %v", time.Since(start).Round(time.Millisecond))
	if domErr != nil {
		t.Fatal(domErr)
	}
	if shotErr != nil {
		t.Fatal(shotErr)
	}

	doc, err := html.Parse(bytes.NewReader(dom))
	if err != nil {
		t.Fatal(err)
	}
	figs := figures(doc)
	for _, id := range FigureIDs() {
		f, ok := figs[id]
		if !ok {
			t.Errorf("the browser's DOM has no figure %s", id)
			continue
		}
		if child(f, "svg") == nil {
			t.Errorf("figure %s: no <svg> in the browser's DOM", id)
		}
		var w, h int
		if _, err := fmt.Sscanf(attr(f, "data-rendered"), "%dx%d", &w, &h); err != nil || w < 300 || h < 150 {
			t.Errorf("figure %s: rendered SVG size %q, want at least 300x150", id, attr(f, "data-rendered"))
		}
	}

	f, err := os.Open(shot)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("decode %s: %v", shot, err)
	}
	b := img.Bounds()
	var ink, blue, orange, green int
	near := func(r, g, bl uint32, c [3]uint32) bool {
		d := func(a, b uint32) uint32 {
			if a > b {
				return a - b
			}
			return b - a
		}
		return d(r, c[0])+d(g, c[1])+d(bl, c[2]) < 40
	}
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			r, g, bl = r>>8, g>>8, bl>>8
			if r < 240 || g < 240 || bl < 240 {
				ink++
			}
			switch {
			case near(r, g, bl, [3]uint32{0x1f, 0x77, 0xb4}):
				blue++
			case near(r, g, bl, [3]uint32{0xff, 0x7f, 0x0e}):
				orange++
			case near(r, g, bl, [3]uint32{0x2c, 0xa0, 0x2c}):
				green++
			}
		}
	}
	total := b.Dx() * b.Dy()
	t.Logf("screenshot %dx%d: %.1f%% non-white, bar pixels blue %d orange %d green %d", b.Dx(), b.Dy(), 100*float64(ink)/float64(total), blue, orange, green)
	if float64(ink) < 0.03*float64(total) {
		t.Errorf("screenshot is nearly blank: %d of %d pixels not white", ink, total)
	}
	if blue < 500 || orange < 500 || green < 500 {
		t.Errorf("screenshot lacks the plots' bars: blue %d, orange %d, green %d pixels", blue, orange, green)
	}
	if dst := os.Getenv("SPLASH_REPORT_SCREENSHOT"); dst != "" {
		png, _ := os.ReadFile(shot)
		os.WriteFile(dst, png, 0o644)
	}
}
