package testcheck

import (
	"bytes"
	"context"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"
)

// Chromium returns the headless browser the page tests run, and skips t
// unless KISFLOW_BROWSER=1 (scripts/browser-test.sh installs chromium and
// sets it). KISFLOW_CHROMIUM names the binary; the default is chromium on
// PATH.
func Chromium(t *testing.T) string {
	t.Helper()
	if os.Getenv("KISFLOW_BROWSER") != "1" {
		t.Skip("browser test: set KISFLOW_BROWSER=1 to run it (scripts/browser-test.sh installs chromium)")
	}
	if bin := os.Getenv("KISFLOW_CHROMIUM"); bin != "" {
		return bin
	}
	bin, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatalf("chromium not found: run scripts/browser-test.sh: %v", err)
	}
	return bin
}

// Headless runs chromium (bin) headless on u, which must be on 127.0.0.1,
// with background networking off, for budget of virtual time, and returns
// its standard output.
func Headless(t *testing.T, bin string, u *url.URL, budget time.Duration, args ...string) []byte {
	t.Helper()
	if u.Hostname() != "127.0.0.1" {
		t.Fatalf("headless chromium on %s: want a page on 127.0.0.1", u)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	base := []string{
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--disable-default-apps", "--disable-extensions", "--no-default-browser-check",
		"--disable-domain-reliability", "--disable-client-side-phishing-detection",
		"--no-pings", "--disable-breakpad", "--disable-dev-shm-usage", "--force-device-scale-factor=1",
		"--user-data-dir=" + t.TempDir(),
		"--virtual-time-budget=" + strconv.FormatInt(budget.Milliseconds(), 10),
	}
	cmd := exec.CommandContext(ctx, bin, append(append(base, args...), u.String())...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = 10 * time.Second
	if err := cmd.Run(); err != nil {
		t.Fatalf("chromium: %v: %s", err, stderr.String())
	}
	return stdout.Bytes()
}
