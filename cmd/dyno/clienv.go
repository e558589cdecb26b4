package main

import (
	"bytes"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/dyno-run/dyno/internal/fsutil"
	"github.com/dyno-run/dyno/supervisor/daemon"
	"github.com/dyno-run/dyno/supervisor/daemon/apitls"
	"github.com/dyno-run/dyno/supervisor/daemon/apitoken"
	"github.com/spf13/cobra"
)

func newCliEnvCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "cli-env heroku",
		Short: `Print the exports that point the Heroku CLI at this machine: eval "$(dyno cli-env heroku)"`,
		Long: `Prints, for a POSIX shell, the variables that point the official Heroku CLI
at this machine's daemon (its API over TCP, [api] listen in dyno.toml), with
the API token and the daemon's authority, and that switch off the CLI's own
calls to Heroku: telemetry, the delinquency check, the update check and
auto-update. git trusts the authority for the daemon's URL alone.

  eval "$(dyno cli-env heroku)"

Set them in the shell where you use the Heroku CLI with dyno, not in your
profile: HEROKU_HOST sends every heroku command here.`,
		Args: func(_ *cobra.Command, args []string) error {
			switch {
			case len(args) == 0:
				return errors.New(`say which CLI: dyno cli-env heroku (the one supported)`)
			case len(args) > 1 || args[0] != "heroku":
				return fmt.Errorf(`%q is not a CLI dyno sets up; heroku is the one supported: dyno cli-env heroku`, strings.Join(args, " "))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, _ []string) error {
			return herokuEnv(cmd.OutOrStdout(), cmd.ErrOrStderr(), os.Getenv)
		},
	}
}

// herokuEnv writes the exports for the Heroku CLI to w, and to stderr
// what the user must know that eval would swallow; getenv is the
// user's environment, whose NODE_EXTRA_CA_CERTS and GIT_CONFIG_COUNT
// are kept.
func herokuEnv(w, stderr io.Writer, getenv func(string) string) error {
	h, err := home()
	if err != nil {
		return err
	}
	settings, err := daemon.LoadSettings(h.SizesFile())
	if err != nil {
		return err
	}
	if settings.API.Listen == "" {
		return fmt.Errorf(`%s has no [api] listen, so the daemon's API is on its unix socket alone, which the Heroku CLI cannot use; add [api] listen = "127.0.0.1:5055" there and restart the daemon`, h.SizesFile())
	}
	host, err := herokuHost(settings.API.Listen, h.SizesFile())
	if err != nil {
		return err
	}
	apiDir := daemon.APIDir(h.Dir)
	ca := apitls.CAPath(apiDir)
	caPEM, err := os.ReadFile(ca)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%s is not there yet: the daemon makes it when it starts with [api] listen; start it (%s), or restart it if it ran before [api] listen was set", ca, daemonStartCommand())
	}
	if err != nil {
		return fmt.Errorf("read the daemon's authority: %w", err)
	}
	homeDir, _ := os.UserHomeDir()
	clientPath, err := apitoken.ClientPath(os.Environ(), homeDir)
	if err != nil {
		return err
	}
	tok, err := apitoken.Token(apiDir, clientPath)
	if err != nil {
		return err
	}
	nodeCA, err := nodeCAFile(getenv("NODE_EXTRA_CA_CERTS"), ca, caPEM, filepath.Join(apiDir, fmt.Sprintf("ca-bundle-%d.pem", os.Getuid())))
	if err != nil {
		return err
	}
	n := 0
	if v := getenv("GIT_CONFIG_COUNT"); v != "" {
		if n, err = strconv.Atoi(v); err != nil || n < 0 {
			return fmt.Errorf("GIT_CONFIG_COUNT is %q, which git would refuse too; set it to the number of GIT_CONFIG_KEY_n it counts, or unset it", v)
		}
	}
	url := "https://" + host
	if v := getenv("GIT_SSL_CAINFO"); v != "" {
		// git takes GIT_SSL_CAINFO over any http.sslCAInfo, a URL's too.
		printHint(stderr, fmt.Sprintf("GIT_SSL_CAINFO is set (%s), and git prefers it to the authority set here for %s/; unset it, or add %s to that file, for git to reach the daemon", v, url, ca))
	}
	fmt.Fprintf(w, "# eval \"$(dyno cli-env heroku)\": points the Heroku CLI at the dyno daemon on %s, has git trust its authority there alone, and switches off the CLI's calls to Heroku\n", url)
	for _, kv := range [][2]string{
		{"HEROKU_HOST", url},
		{"HEROKU_API_KEY", tok},
		// The CLI's delinquency check sends the token to this URL with
		// every GET /account: the daemon, not Heroku.
		{"HEROKU_PARTICLEBOARD_URL", url},
		{"DISABLE_TELEMETRY", "true"},
		{"HEROKU_SKIP_NEW_VERSION_CHECK", "true"},
		{"HEROKU_DISABLE_AUTOUPDATE", "true"},
		{"NODE_EXTRA_CA_CERTS", nodeCA},
		// git's config from the environment: the authority is trusted
		// for the daemon's URL alone, after whatever the user has.
		{"GIT_CONFIG_COUNT", strconv.Itoa(n + 1)},
		{fmt.Sprintf("GIT_CONFIG_KEY_%d", n), "http." + url + "/.sslCAInfo"},
		{fmt.Sprintf("GIT_CONFIG_VALUE_%d", n), ca},
	} {
		fmt.Fprintf(w, "export %s=%s\n", kv[0], singleQuoted(kv[1]))
	}
	return nil
}

// herokuHost is the API's host:port as the Heroku CLI must write it: it
// takes HEROKU_HOST only as 127.0.0.1 or localhost (and sends its token
// to no other local name).
func herokuHost(listen, settingsFile string) (string, error) {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return "", fmt.Errorf("%s: api.listen: %q is not host:port", settingsFile, listen)
	}
	switch host {
	case "", "0.0.0.0", "::", "127.0.0.1":
		return net.JoinHostPort("127.0.0.1", port), nil
	case "localhost", "::1":
		return net.JoinHostPort("localhost", port), nil
	}
	return "", fmt.Errorf(`%s: api.listen: the Heroku CLI reaches the API only at 127.0.0.1 or localhost, not %q; listen on "127.0.0.1:%s" (reach a remote daemon through ssh -L %s:127.0.0.1:%s)`, settingsFile, listen, port, port, port)
}

// nodeCAFile is the file for NODE_EXTRA_CA_CERTS. Node reads one file,
// so when the user's environment names another already, it is a bundle
// of that file's certificates followed by the daemon's authority
// (without a second copy of it: the bundle itself may be the file).
func nodeCAFile(current, ca string, caPEM []byte, bundle string) (string, error) {
	if current == "" || filepath.Clean(current) == ca {
		return ca, nil
	}
	b, err := os.ReadFile(current)
	if err != nil {
		return "", fmt.Errorf("NODE_EXTRA_CA_CERTS names a file that cannot be read (%w); fix it or unset it", err)
	}
	ours, _ := pem.Decode(caPEM)
	if ours == nil {
		return "", fmt.Errorf("%s holds no certificate; remove the daemon's api folder's ca.key and ca.pem and restart it for a new authority", ca)
	}
	var out []byte
	for {
		var block *pem.Block
		block, b = pem.Decode(b)
		if block == nil {
			break
		}
		if block.Type == "CERTIFICATE" && !bytes.Equal(block.Bytes, ours.Bytes) {
			out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: block.Bytes})...)
		}
	}
	out = append(out, pem.EncodeToMemory(ours)...)
	if err := fsutil.WriteFile(bundle, out, 0o644); err != nil {
		return "", fmt.Errorf("the bundle for NODE_EXTRA_CA_CERTS: %w", err)
	}
	return bundle, nil
}

// singleQuoted quotes s for a POSIX shell: in single quotes, within
// which nothing is special, a single quote written as '\”. Every value
// is quoted, even one that needs none (run.go's shellQuote leaves those
// bare), so that what eval runs reads the same for every line.
func singleQuoted(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
