/*
 * appliance/process.c: what the daemon asks of the kernel for the whole
 * process before it holds its first secret. By default no core file is
 * ever written (RLIMIT_CORE 0, soft and hard) and the process is not
 * dumpable (PR_SET_DUMPABLE 0), so:
 *
 * - a crash leaves no copy of memory on disk: the TLS traffic keys of
 *   every connection, the session tickets' key, the keystore's unwrapped
 *   DEKs and verification cache, the prompts and answers of inference, the
 *   HSM PIN. Each would otherwise land in /var/lib/systemd/coredump or in
 *   the working folder, readable long after the crash, by whoever handles
 *   crash reports. A core_pattern that pipes to a helper (systemd-coredump,
 *   apport) is handed nothing either: the kernel does not dump a process
 *   that is not dumpable while fs.suid_dumpable is 0, Debian's default.
 * - another process of the same user cannot ptrace it or read
 *   /proc/PID/mem, environ or its descriptors' targets; only a process
 *   with CAP_SYS_PTRACE can (root, or a debugger an operator runs as root).
 *
 * An operator who must debug a crash sets core_dumps = yes and gets the
 * system's behaviour back, with a warning at every start that says what a
 * core file then holds.
 *
 * Caveat: changing the process's user or group ids (setuid, setgid) sets
 * the dumpable flag back to fs.suid_dumpable's value; whatever drops
 * privileges must call process_protect() again after it.
 *
 * It must never raise a limit, and never run after the first secret is
 * read (main() calls it right after the configuration is known).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <sys/prctl.h>
#include <sys/resource.h>

#include "appliance/internal.h"

int
process_protect(int core_dumps, char err[256])
{
	struct rlimit none = { 0, 0 };

	if (core_dumps) {
		log_warnx("core_dumps = yes: a crash writes this process's "
		          "memory to a core file, with the TLS keys of open "
		          "connections, unwrapped keys and request contents; "
		          "set it back to no once the crash is understood");
		return 0;
	}
	if (setrlimit(RLIMIT_CORE, &none) != 0) {
		int rc = -errno;

		snprintf(err, 256, "core file size limit: %s", sr_strerror(rc));
		return rc;
	}
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) {
		int rc = -errno;

		snprintf(err, 256, "PR_SET_DUMPABLE: %s", sr_strerror(rc));
		return rc;
	}
	return 0;
}
