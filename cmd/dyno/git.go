package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/dyno-run/dyno/buildpacks"
	"github.com/dyno-run/dyno/buildpacks/gitpush"
	"github.com/dyno-run/dyno/internal/fsutil"
	"github.com/dyno-run/dyno/ledger/app"
	"github.com/dyno-run/dyno/supervisor/daemon"
	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"
)

func addGitCommands(root *cobra.Command) {
	root.AddCommand(newGitRemoteCommand(), newGitShellCommand(), newGitHookCommand())
}

// setRemote points the remote name of the git repository dir is in at
// the app's repository, adding it or changing its URL.
func setRemote(ctx context.Context, dir, name, url string) error {
	run := func(args ...string) ([]byte, error) {
		cmd := exec.CommandContext(ctx, "git", args...)
		cmd.Dir = dir
		cmd.Env = gitpush.CleanEnv(cmd.Environ())
		return cmd.CombinedOutput()
	}
	verb := "add"
	if _, err := run("remote", "get-url", name); err == nil {
		verb = "set-url"
	}
	if out, err := run("remote", verb, name, url); err != nil {
		return fmt.Errorf("git remote %s %s: %s", verb, name, strings.TrimSpace(string(out)))
	}
	return nil
}

// inGitRepo says whether dir is in a git work tree.
func inGitRepo(dir string) bool {
	cmd := exec.Command("git", "rev-parse", "--is-inside-work-tree")
	cmd.Dir = dir
	cmd.Env = gitpush.CleanEnv(cmd.Environ())
	out, err := cmd.Output()
	return err == nil && strings.TrimSpace(string(out)) == "true"
}

func newGitRemoteCommand() *cobra.Command {
	var name, remote, ssh string
	cmd := &cobra.Command{
		Use:   "git:remote",
		Short: "Add a git remote for the app to this repository, so git push deploys it",
		Long: `git:remote points a remote (dyno, or -r NAME) of the git repository in the
current folder at the app's repository: a local path, or with --ssh
USER@HOST an SSH URL served by dyno git-shell on that machine (dyno keys:add
gives a key access). git push dyno main then builds and releases the app.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if name == "" && os.Getenv("DYNO_APP") == "" {
				return errors.New("give the app: dyno git:remote -a APP")
			}
			a, err := openApp(name)
			if err != nil {
				return err
			}
			if !inGitRepo(".") {
				return errors.New("this folder is not in a git repository: run git init first, or cd to the app's repository")
			}
			if err := gitpush.EnsureApp(cmd.Context(), a); err != nil {
				return err
			}
			url := a.RepoDir()
			if ssh != "" {
				if url, err = sshURL(ssh, a.Name); err != nil {
					return err
				}
			}
			if err := setRemote(cmd.Context(), ".", remote, url); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "set git remote %s to %s\n", remote, url)
			return nil
		},
	}
	appFlag(cmd, &name)
	cmd.Flags().StringVarP(&remote, "remote", "r", "dyno", "the git remote's name")
	cmd.Flags().StringVar(&ssh, "ssh", "", "USER@HOST[:PORT] of the machine whose sshd serves dyno git-shell, for an SSH URL")
	return cmd
}

// sshURL is the URL of app's repository through dyno git-shell on
// userHost (USER@HOST or USER@HOST:PORT).
func sshURL(userHost, appName string) (string, error) {
	user, host, ok := strings.Cut(userHost, "@")
	if !ok || user == "" || host == "" || strings.ContainsAny(userHost, "/ ") {
		return "", fmt.Errorf("--ssh %q: give USER@HOST or USER@HOST:PORT, the account that runs dyno on that machine (dyno@server.example.com)", userHost)
	}
	if _, port, ok := strings.Cut(host, ":"); ok && port != "" {
		return "ssh://" + userHost + "/" + appName + ".git", nil
	}
	return userHost + ":" + appName + ".git", nil
}

func newGitShellCommand() *cobra.Command {
	var key, user string
	cmd := &cobra.Command{
		Use:   "git-shell",
		Short: "Serve git push and fetch over ssh: the command dyno's authorized_keys entries force",
		Long: `git-shell is what sshd runs for a key added with dyno keys:add, whatever the
client asked for: it reads the request git made (SSH_ORIGINAL_COMMAND), lets
git push and git fetch reach an app's repository, and refuses the rest.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := gitpush.ParseSSHCommand(os.Getenv("SSH_ORIGINAL_COMMAND"))
			if err != nil {
				return err
			}
			h, err := home()
			if err != nil {
				return err
			}
			a, err := h.Open(c.App)
			if errors.Is(err, app.ErrNotFound) {
				return fmt.Errorf("no app named %s here; create it on this machine with dyno apps:create %s", c.App, c.App)
			}
			if err != nil {
				return err
			}
			if err := gitpush.EnsureApp(cmd.Context(), a); err != nil {
				return err
			}
			// Who pushed, for the release: the key's comment, else its
			// fingerprint.
			env := os.Environ()
			if user == "" {
				user = key
			}
			if user != "" {
				env = append(env, "DYNO_PUSH_USER="+user)
			}
			gitPath, err := exec.LookPath("git")
			if err != nil {
				return errors.New("git is not installed on this machine; install it (apt install git) to take pushes")
			}
			service := strings.TrimPrefix(c.Service, "git-")
			// git takes over stdin and stdout, the ssh channel.
			return syscall.Exec(gitPath, []string{"git", service, a.RepoDir()}, env)
		},
	}
	cmd.Flags().StringVar(&key, "key", "", "the fingerprint of the key sshd let in (its entry's forced command gives it)")
	cmd.Flags().StringVar(&user, "user", "", "who the key belongs to, its comment (its entry's forced command gives it)")
	return cmd
}

func newGitHookCommand() *cobra.Command {
	var name string
	var pid int
	cmd := &cobra.Command{
		Use:    "git-hook HOOK",
		Short:  "Run an app repository's git hook (its hooks/pre-receive calls this)",
		Hidden: true,
		Args:   exactArgs(1, "give the hook: dyno git-hook pre-receive"),
		RunE: func(cmd *cobra.Command, args []string) error {
			switch args[0] {
			case "pre-receive":
				return preReceive(cmd.Context(), name, os.Stdin, os.Stdout)
			case "hold":
				return holdUntilExit(pid)
			}
			return fmt.Errorf("no hook %q: dyno runs pre-receive", args[0])
		},
	}
	appFlag(cmd, &name)
	cmd.Flags().IntVar(&pid, "pid", 0, "with hold: the process whose end releases the lock on fd 3")
	return cmd
}

// pushOutput is what a hook writes to the pusher: once a write fails
// (the pusher went away), the rest is dropped and the build goes on.
type pushOutput struct {
	w      io.Writer
	failed bool
}

func (o *pushOutput) Write(p []byte) (int, error) {
	if !o.failed {
		if _, err := o.w.Write(p); err != nil {
			o.failed = true
		}
	}
	return len(p), nil
}

func (o *pushOutput) printf(format string, args ...any) { fmt.Fprintf(o, format, args...) }

// preReceive is the app repository's pre-receive hook: a push to main
// or master builds that commit with dyno build and releases it; the
// push is taken only if the build succeeds. Whatever happens to the
// push meanwhile (Ctrl-C in a local push's terminal, a closed ssh
// session), a build that started finishes: it runs in a session of its
// own, out of reach of the pusher's signals, and this hook waits for it
// with those signals caught.
func preReceive(ctx context.Context, appName string, in io.Reader, stdout io.Writer) error {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGPIPE)
	defer signal.Stop(sigs)
	out := &pushOutput{w: stdout}
	// git receive-pack, which runs this hook (the script execs dyno).
	receivePack := os.Getppid()

	a, err := openApp(appName)
	if err != nil {
		return err
	}
	updates, err := gitpush.ReadUpdates(in)
	if err != nil {
		return err
	}
	plan := gitpush.PlanPush(updates, "dyno")
	if len(plan.Refused) > 0 {
		for _, line := range plan.Refused {
			out.printf(" !     %s\n", line)
		}
		return exitStatus(1)
	}
	if plan.Build == nil {
		return nil
	}
	u := *plan.Build

	// One push of an app builds at a time; the lock passes to the build
	// itself, so an interrupted push's build still holds it.
	lock, err := os.OpenFile(filepath.Join(a.Dir, "push.lock"), os.O_CREATE|os.O_RDWR|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return fmt.Errorf("push to %s: %w", a.Name, err)
	}
	defer lock.Close()
	if fsutil.Flock(lock, unix.LOCK_EX|unix.LOCK_NB) != nil {
		out.printf("Waiting for the deploy of %s in progress to finish...\n", a.Name)
		if err := fsutil.Flock(lock, unix.LOCK_EX); err != nil {
			return fmt.Errorf("push to %s: %w", a.Name, err)
		}
	}
	// git moves the ref from the old value the pusher saw, or not at
	// all; a push that waited behind another would build, release, and
	// then be refused. Refused first instead.
	want := u.Old
	if u.Creates() {
		want = ""
	}
	if refValue(ctx, u.Ref) != want {
		out.printf(" !     %s moved while this push waited: another push deployed it. Fetch, merge and push again.\n", u.Branch())
		return exitStatus(1)
	}

	scratch, err := a.NewScratch()
	if err != nil {
		return err
	}
	defer scratch.Remove()
	src := filepath.Join(scratch.Dir, "source")
	if err := os.Mkdir(src, 0o755); err != nil {
		return fmt.Errorf("push to %s: %w", a.Name, err)
	}
	out.printf("Building source:\n\n")
	if err := buildpacks.ArchiveCommit(ctx, u.New, src); err != nil {
		return err
	}

	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("push to %s: %w", a.Name, err)
	}
	args := []string{"build", src, "--app", a.Name, "--source-version", u.New}
	if user := os.Getenv("DYNO_PUSH_USER"); user != "" {
		args = append(args, "--user", user)
	}
	build := exec.Command(exe, args...)
	build.Env = gitpush.CleanEnv(os.Environ())
	build.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	build.ExtraFiles = []*os.File{lock, scratch.LockFile()}
	pr, pw, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("push to %s: %w", a.Name, err)
	}
	build.Stdout, build.Stderr = pw, pw
	if err := build.Start(); err != nil {
		pr.Close()
		pw.Close()
		return fmt.Errorf("push to %s: %w", a.Name, err)
	}
	pw.Close()
	// Read to the end whatever becomes of the pusher: the build never
	// meets a full pipe.
	io.Copy(out, pr)
	pr.Close()
	werr := build.Wait()
	if werr != nil {
		out.printf(" !     Push rejected to %s.\n", a.Name)
		return exitStatus(1)
	}
	settings, err := daemon.LoadSettings(a.Home().SizesFile())
	if err == nil {
		if url := settings.Router.URL(a.Name); url != "" {
			out.printf("       %s deployed to dyno\n", url)
		}
	}
	out.printf("\nVerifying deploy...")
	s, err := a.Ledger.State()
	if err != nil || s.Current == nil || s.Current.SourceVersion != u.New {
		out.printf(" failed: the current release is not this push's; dyno releases -a %s says what is\n", a.Name)
		return exitStatus(1)
	}
	out.printf(" done.\n")
	handOnLock(lock, receivePack)
	return nil
}

// handOnLock keeps the push lock held after this hook returns, until
// git receive-pack, its parent, ends: git moves the ref only once the
// hook has returned 0, and a push waiting on the lock must find it
// moved, or it would build from a stale main and be refused by git
// only after releasing. The lock goes to a process of its own (fd 3),
// with no stdout or stderr, which git waits to see closed before it
// goes on.
func handOnLock(lock *os.File, receivePack int) {
	if os.Getppid() != receivePack {
		// git is gone (the push was interrupted): no ref will move.
		return
	}
	exe, err := os.Executable()
	if err != nil {
		return
	}
	hold := exec.Command(exe, "git-hook", "hold", "--pid", strconv.Itoa(receivePack))
	hold.ExtraFiles = []*os.File{lock}
	hold.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if hold.Start() == nil {
		hold.Process.Release()
	}
}

// holdUntilExit waits for process pid to end, holding what fd 3 holds.
// A pidfd becomes readable when its process ends (pidfd_open(2)).
func holdUntilExit(pid int) error {
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		// Gone already.
		return nil
	}
	defer unix.Close(fd)
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	for {
		if _, err := unix.Poll(fds, -1); err != unix.EINTR {
			return nil
		}
	}
}

// refValue is the object name ref holds in the repository git's
// environment names (the hook's), or "" when it does not exist.
func refValue(ctx context.Context, ref string) string {
	out, err := exec.CommandContext(ctx, "git", "rev-parse", "--verify", "--quiet", ref).Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}
