/*
 * The resident init of a dyno: what a dyno's init becomes once the app
 * runs. The Go init (isolate/init.go) builds the sandbox and starts the
 * app, then execs this program from a sealed memfd, in place: same pid,
 * same children, same open files. It does only what an init does for the
 * rest of the dyno's life, in a few kilobytes instead of a Go runtime:
 *
 *   - reap every child, orphans included (it is PID 1 of the dyno's pid
 *     namespace, or a child subreaper), and keep the main process's
 *     status;
 *   - forward SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1 and SIGUSR2 to
 *     every process of the dyno;
 *   - obey the parent's records on the control socket (fd 3): 's' N
 *     signals every process with N, 'k' kills them all and exits;
 *   - on end of file there (the parent is gone), kill everything, exit;
 *   - when the main process ends, kill what is left, empty the upper dir
 *     of a mapped dyno, and exit with the main process's status: its exit
 *     code, or 128+N for signal N.
 *
 * The protocol is documented in isolate/protocol.go; the handover in
 * isolate/handover.go. No libc: system calls are made directly, and the
 * program has its own _start. Built by isolate/resident/build.sh, with
 * fixed options, into the committed resident-amd64 that dyno embeds.
 *
 * State comes in this way:
 *   argv    "dyno" "init" NAME       (ps shows the dyno's name, as before)
 *   env     DYNO_MAIN=PID            the app's main process
 *           DYNO_UPPER=FD            a mapped dyno's upper dir, to empty
 *   fd 3    the control socket; fd 4 the dyno's lock (kept open, never
 *           touched: its flock lives as long as this process does)
 *   mask    the signals above and SIGCHLD arrive blocked (the signal mask
 *           is preserved across execve, signal(7)), so none that came
 *           during the exec is lost; pending ones stay pending.
 */

typedef unsigned long size_t;
typedef long ssize_t;

#if defined(__x86_64__)
/* arch/x86/entry/syscalls/syscall_64.tbl */
enum {
	SYS_read = 0, SYS_write = 1, SYS_open = 2, SYS_close = 3,
	SYS_lseek = 8, SYS_mmap = 9, SYS_munmap = 11,
	SYS_rt_sigprocmask = 14, SYS_nanosleep = 35, SYS_getpid = 39,
	SYS_wait4 = 61, SYS_kill = 62, SYS_prctl = 157,
	SYS_getdents64 = 217, SYS_exit_group = 231, SYS_openat = 257,
	SYS_unlinkat = 263, SYS_ppoll = 271, SYS_signalfd4 = 289,
};

static long
syscall6(long n, long a, long b, long c, long d, long e, long f)
{
	register long r10 __asm__("r10") = d;
	register long r8 __asm__("r8") = e;
	register long r9 __asm__("r9") = f;
	long ret;

	__asm__ volatile("syscall"
	    : "=a"(ret)
	    : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
	    : "rcx", "r11", "memory");
	return ret;
}

/*
 * The kernel starts a static program at _start with the stack holding
 * argc, then argv, NULL, envp, NULL (the System V ABI's process
 * start). The stack is realigned to 16 bytes for the C code.
 */
__asm__(
    ".text\n"
    ".global _start\n"
    "_start:\n"
    "	xor %ebp, %ebp\n"
    "	mov %rsp, %rdi\n"
    "	and $-16, %rsp\n"
    "	call start\n"
    "	hlt\n");
#else
#error "the resident init is written for linux/amd64; other arches keep the Go init resident"
#endif

#define syscall1(n, a) syscall6(n, (long)(a), 0, 0, 0, 0, 0)
#define syscall2(n, a, b) syscall6(n, (long)(a), (long)(b), 0, 0, 0, 0)
#define syscall3(n, a, b, c) syscall6(n, (long)(a), (long)(b), (long)(c), 0, 0, 0)
#define syscall4(n, a, b, c, d) syscall6(n, (long)(a), (long)(b), (long)(c), (long)(d), 0, 0)

/* Errors come back as -errno (asm-generic/errno-base.h). */
enum { EINTR = 4, ECHILD = 10, EAGAIN = 11, EISDIR = 21 };

/* Signal numbers (asm/signal.h). */
enum {
	SIGHUP = 1, SIGINT = 2, SIGQUIT = 3, SIGKILL = 9, SIGUSR1 = 10,
	SIGUSR2 = 12, SIGTERM = 15, SIGCHLD = 17,
};

/* The rest of the ABI this program uses. */
enum {
	PR_SET_PDEATHSIG = 1, PR_SET_DUMPABLE = 4, PR_SET_NAME = 15,
	PR_SET_CHILD_SUBREAPER = 36,
	WNOHANG = 1,
	SIG_BLOCK = 0,
	SFD_CLOEXEC = 02000000,
	POLLIN = 1, POLLERR = 8, POLLHUP = 16,
	O_RDONLY = 0, O_DIRECTORY = 0200000, O_NOFOLLOW = 0400000,
	O_CLOEXEC = 02000000,
	AT_FDCWD = -100, AT_REMOVEDIR = 0x200,
	DT_DIR = 4,
	PROT_READ = 1, PROT_WRITE = 2, MAP_PRIVATE = 2, MAP_ANONYMOUS = 0x20,
};

enum { controlFD = 3 };

struct pollfd {
	int fd;
	short events, revents;
};

/* struct signalfd_siginfo (linux/signalfd.h) is 128 bytes, ssi_signo first. */
struct sigrecord {
	unsigned int signo;
	unsigned char rest[124];
};

struct dirent64 {
	unsigned long ino;
	long off;
	unsigned short reclen;
	unsigned char type;
	char name[];
};

struct timespec {
	long sec, nsec;
};

/* gcc may emit calls to these even in freestanding code. */
void *
memset(void *d, int c, size_t n)
{
	unsigned char *p = d;

	while (n--)
		*p++ = (unsigned char)c;
	return d;
}

void *
memcpy(void *d, const void *s, size_t n)
{
	unsigned char *p = d;
	const unsigned char *q = s;

	while (n--)
		*p++ = *q++;
	return d;
}

static int self;	/* our pid: 1 in the dyno's own pid namespace */
static int mainpid;	/* the app's main process */
static int maindone;	/* it has ended and been reaped */
static int status;	/* its status, shell style */

static void
die(int code)
{
	for (;;)
		syscall1(SYS_exit_group, code);
}

static int
prefix(const char *s, const char *p)
{
	while (*p)
		if (*s++ != *p++)
			return 0;
	return 1;
}

static int
atoi_(const char *s)
{
	int n = 0;

	if (*s < '0' || *s > '9')
		return -1;
	while (*s >= '0' && *s <= '9')
		n = n * 10 + (*s++ - '0');
	return *s ? -1 : n;
}

/* itoa_ writes n in decimal at p and returns the end. */
static char *
itoa_(char *p, unsigned int n)
{
	char tmp[12];
	int i = 0;

	do
		tmp[i++] = (char)('0' + n % 10);
	while (n /= 10);
	while (i)
		*p++ = tmp[--i];
	return p;
}

/*
 * reap collects every child that has ended, without blocking, records
 * the main process's status, and says whether any child is left.
 * wait4(2): 0 means children, none ended yet; -ECHILD, none at all.
 */
static int
reap(void)
{
	for (;;) {
		int ws = 0;
		long pid = syscall4(SYS_wait4, -1, &ws, WNOHANG, 0);

		if (pid == -EINTR)
			continue;
		if (pid < 0)
			return 0;
		if (pid == 0)
			return 1;
		if (pid == mainpid && !maindone) {
			maindone = 1;
			if ((ws & 0x7f) == 0)		/* WIFEXITED */
				status = (ws >> 8) & 0xff;
			else if ((ws & 0xff) != 0x7f)	/* WIFSIGNALED */
				status = 128 + (ws & 0x7f);
			else
				status = 255;
		}
	}
}

/*
 * Below PID 1, the dyno is this process's subtree: every process whose
 * chain of parents reaches it. As a child subreaper, orphans of the
 * dyno are re-parented to it, not to the host's init, so nothing of the
 * dyno ever leaves the subtree (prctl(2), PR_SET_CHILD_SUBREAPER).
 *
 * parentof reads the parent from /proc/PID/stat, whose second field,
 * the command name in parentheses, may hold any byte: the fields after
 * the last ')' are the state, then the parent (proc_pid_stat(5)).
 */
static int
parentof(int pid)
{
	char path[32] = "/proc/", buf[256], *p, *close = 0;
	int fd;
	long n;

	p = itoa_(path + 6, (unsigned int)pid);
	memcpy(p, "/stat", 6);
	fd = (int)syscall3(SYS_openat, AT_FDCWD, path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	n = syscall3(SYS_read, fd, buf, sizeof buf - 1);
	syscall1(SYS_close, fd);
	if (n <= 0)
		return -1;
	buf[n] = 0;
	for (p = buf; *p; p++)
		if (*p == ')')
			close = p;
	if (!close || close[1] != ' ' || !close[2] || close[3] != ' ')
		return -1;
	n = 0;
	for (p = close + 4; *p >= '0' && *p <= '9'; p++)
		n = n * 10 + (*p - '0');
	return (int)n;
}

/* A process table for signalall: pid and parent, in a scratch mapping. */
struct proc {
	int pid, ppid;
};

/*
 * The table holds up to maxprocs processes; after it, in the same
 * mapping, a bitmap of the descendants found, indexed by pid, which is
 * below PID_MAX_LIMIT, 2^22 on 64-bit kernels (include/linux/threads.h).
 * Pages never touched cost nothing.
 */
enum { maxprocs = 1 << 16, pidlimit = 1 << 22 };
#define scratchsize (maxprocs * sizeof(struct proc) + pidlimit / 8)

/*
 * signalall sends sig to every process of the dyno but this one. As PID
 * 1 of a pid namespace, kill(-1, sig) is exactly that (kill(2): every
 * process it may signal except itself, and the namespace holds nothing
 * else). Otherwise it reads every process's parent from /proc into a
 * table, marks this process's descendants, pass after pass until one
 * marks no more (as many as the tree is deep), and signals them. The
 * table lives in a mapping made for the call and dropped after it, so a
 * forwarded signal leaves no memory behind.
 */
static void
signalall(int sig)
{
	struct proc *t;
	unsigned char *below;
	char buf[2048];
	int fd, n = 0;
	long got;

	if (self == 1) {
		syscall2(SYS_kill, -1, sig);
		return;
	}
	t = (struct proc *)syscall6(SYS_mmap, 0, scratchsize,
	    PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if ((unsigned long)t > -4096UL)
		return;
	below = (unsigned char *)(t + maxprocs);
	fd = (int)syscall3(SYS_openat, AT_FDCWD, "/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		while ((got = syscall3(SYS_getdents64, fd, buf, sizeof buf)) > 0) {
			for (long off = 0; off < got;) {
				struct dirent64 *d = (struct dirent64 *)(buf + off);
				int pid = atoi_(d->name), ppid;

				off += d->reclen;
				if (pid <= 0 || pid >= pidlimit || pid == self || n == maxprocs)
					continue;
				if ((ppid = parentof(pid)) > 0)
					t[n++] = (struct proc){pid, ppid};
			}
		}
		syscall1(SYS_close, fd);
	}
	/* A process whose parent is this one or a marked one is marked. */
	for (int more = 1; more;) {
		more = 0;
		for (int i = 0; i < n; i++) {
			int p = t[i].pid, pp = t[i].ppid;

			if (below[p / 8] & (1 << p % 8))
				continue;
			if (pp == self || (pp < pidlimit && below[pp / 8] & (1 << pp % 8))) {
				below[p / 8] |= (unsigned char)(1 << p % 8);
				more = 1;
			}
		}
	}
	for (int i = 0; i < n; i++) {
		int p = t[i].pid;

		if (below[p / 8] & (1 << p % 8))
			syscall2(SYS_kill, p, sig);
	}
	syscall2(SYS_munmap, t, scratchsize);
}

/*
 * killall SIGKILLs every process of the dyno until none is left and all
 * are reaped. It loops because a process may fork between the scan and
 * the kill; a killed process cannot fork again, so it converges. Every
 * descendant is re-parented to this process (PID 1, or a subreaper)
 * before its parent is reaped, so "no child left" means "nothing left".
 */
static void
killall(void)
{
	struct timespec ms = {0, 1000000};

	while (reap()) {
		signalall(SIGKILL);
		if (!reap())
			break;
		syscall2(SYS_nanosleep, &ms, 0);
	}
	if (!maindone) {
		maindone = 1;
		status = 128 + SIGKILL;
	}
}

enum { maxdepth = 256 };

/*
 * empty removes everything in the directory dfd, depth levels below the
 * upper dir, with getdents64(2) and unlinkat(2) relative to open
 * directories, never following a symbolic link (O_NOFOLLOW). Entries
 * are removed while the directory is read, which may make a read skip
 * some, so it reads it again until a pass removes nothing. Deeper than
 * maxdepth it leaves the rest to the manager, whose helper removes what
 * a killed init left (removeDynoDir in isolate/sandbox.go).
 */
static void
empty(int dfd, int depth)
{
	char buf[1024] __attribute__((aligned(8)));
	int removed;
	long got;

	do {
		removed = 0;
		syscall3(SYS_lseek, dfd, 0, 0);
		while ((got = syscall3(SYS_getdents64, dfd, buf, sizeof buf)) > 0) {
			for (long off = 0; off < got;) {
				struct dirent64 *d = (struct dirent64 *)(buf + off);
				const char *name = d->name;
				long err;

				off += d->reclen;
				if (name[0] == '.' && (!name[1] || (name[1] == '.' && !name[2])))
					continue;
				if (d->type != DT_DIR) {
					err = syscall3(SYS_unlinkat, dfd, name, 0);
					if (err == 0) {
						removed++;
						continue;
					}
					if (err != -EISDIR) /* DT_UNKNOWN: maybe a dir */
						continue;
				}
				if (depth < maxdepth) {
					int sub = (int)syscall3(SYS_openat, dfd, name,
					    O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
					if (sub >= 0) {
						empty(sub, depth + 1);
						syscall1(SYS_close, sub);
					}
				}
				if (syscall3(SYS_unlinkat, dfd, name, AT_REMOVEDIR) == 0)
					removed++;
			}
		}
	} while (removed);
}

static void
finish(int upper)
{
	killall();
	if (upper >= 0)
		empty(upper, 0);
	die(status);
}


__attribute__((used)) void
start(long *sp)
{
	int argc = (int)sp[0];
	char **argv = (char **)(sp + 1), **envp = argv + argc + 1;
	int upper = -1, sfd, want = 0, sig = 0;
	unsigned long mask = 0;

	/*
	 * Not dumpable, first: execve made this process dumpable again
	 * (prctl(2), PR_SET_DUMPABLE), and a dumpable init of the app's uid
	 * could be ptraced by the app. Its /proc/self/exe is the sealed
	 * memfd, which cannot be written, so even then it is no way back to
	 * the host's dyno binary (CVE-2019-5736).
	 */
	syscall2(SYS_prctl, PR_SET_DUMPABLE, 0);
	/*
	 * The child subreaper attribute is preserved across execve (prctl(2),
	 * PR_SET_CHILD_SUBREAPER: "The setting is preserved across
	 * execve(2)"; it lives in the signal_struct, which exec keeps). Set
	 * again all the same: it costs one call.
	 */
	syscall2(SYS_prctl, PR_SET_CHILD_SUBREAPER, 1);
	if (argc >= 3)
		syscall2(SYS_prctl, PR_SET_NAME, argv[2]);
	for (char **e = envp; *e; e++) {
		if (prefix(*e, "DYNO_MAIN="))
			mainpid = atoi_(*e + 10);
		else if (prefix(*e, "DYNO_UPPER="))
			upper = atoi_(*e + 11);
	}
	if (mainpid <= 0)
		die(125);
	self = (int)syscall1(SYS_getpid, 0);

	/*
	 * Blocked signals are never ignored, not even those PID 1 of a pid
	 * namespace has no handler for (kernel/signal.c, sig_ignored), so
	 * blocking them and reading a signalfd(2) keeps the behaviour of
	 * the Go init, which had handlers: the app's kill(1, SIGTERM)
	 * reaches the whole dyno, its SIGKILL to PID 1 does nothing.
	 */
	{
		int sigs[] = {SIGCHLD, SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2};
		for (unsigned i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
			mask |= 1UL << (sigs[i] - 1);
	}
	syscall4(SYS_rt_sigprocmask, SIG_BLOCK, &mask, 0, sizeof mask);
	sfd = (int)syscall4(SYS_signalfd4, -1, &mask, sizeof mask, SFD_CLOEXEC);
	if (sfd < 0)
		die(125);

	/*
	 * A SIGCHLD that came while the Go init was exec'ing this program
	 * went to its handler and is gone: reap now, not only on the next.
	 */
	reap();
	if (maindone)
		finish(upper);

	for (;;) {
		struct pollfd fds[2] = {{controlFD, POLLIN, 0}, {sfd, POLLIN, 0}};
		long n = syscall4(SYS_ppoll, fds, 2, 0, 0);

		if (n < 0)
			continue; /* EINTR; nothing else can fail here */
		if (fds[1].revents & POLLIN) {
			struct sigrecord rec[4];
			long got = syscall3(SYS_read, sfd, rec, sizeof rec);

			for (long i = 0; got > 0 && i < got / (long)sizeof rec[0]; i++) {
				if (rec[i].signo != SIGCHLD) {
					signalall((int)rec[i].signo);
					continue;
				}
				/*
				 * The dyno ends with its main process, as on
				 * Heroku: whatever it left running goes with it.
				 */
				reap();
				if (maindone)
					finish(upper);
			}
		}
		if (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) {
			unsigned char buf[64];
			long got = syscall3(SYS_read, controlFD, buf, sizeof buf);

			if (got == -EINTR || got == -EAGAIN)
				continue;
			/*
			 * End of file, or an error: the manager is gone, and
			 * nobody will stop this dyno later, so stop it now.
			 */
			if (got <= 0)
				finish(upper);
			for (long i = 0; i < got; i++) {
				unsigned char c = buf[i];

				if (want) { /* the signal of an 's' record */
					want = 0;
					sig = c;
					if (sig > 0 && sig < 65)
						signalall(sig);
					continue;
				}
				switch (c) {
				case 's':
					want = 1;
					break;
				case 'k':
					finish(upper);
					break;
				case ' ': case '\t': case '\r': case '\n':
					/* the end of the config's JSON line */
					break;
				default:
					/* nonsense: as if the parent were gone */
					finish(upper);
				}
			}
		}
	}
}
