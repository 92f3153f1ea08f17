import Glibc
import SystemPackage

/// Runs a program and waits for it with `waitpid`, so the caller learns of its exit at once.
/// (Foundation's `Process.waitUntilExit` polls a run loop in 50 ms steps on Linux, which
/// quantised the benchmark's `ls -lR` timings.)
public enum Subprocess {
    /// Runs `executable` with `arguments`, standard input, output and error on /dev/null;
    /// returns its exit status (128 + signal number if a signal ended it).
    public static func runQuietly(_ executable: String, _ arguments: [String]) throws(IOError) -> Int32 {
        try runMeasured(executable, arguments).status
    }

    /// As ``runQuietly(_:_:)``, and returns the child's CPU time too (from `wait4`'s rusage).
    public static func runMeasured(_ executable: String, _ arguments: [String]) throws(IOError) -> (
        status: Int32, cpu: CPUTime
    ) {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        for fd in [STDIN_FILENO, STDOUT_FILENO, STDERR_FILENO] {
            posix_spawn_file_actions_addopen(&actions, fd, "/dev/null", fd == STDIN_FILENO ? O_RDONLY : O_WRONLY, 0)
        }
        let argv: [UnsafeMutablePointer<CChar>?] = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, executable, &actions, nil, argv, environ)
        guard rc == 0 else { throw IOError("run", path: executable, errno: Errno(rawValue: rc)) }
        var status: Int32 = 0
        var usage = rusage()
        while wait4(pid, &status, 0, &usage) < 0 {
            guard Errno.current == .interrupted else { throw IOError("wait for", path: executable, errno: .current) }
        }
        // WIFEXITED / WEXITSTATUS / WTERMSIG, which Swift does not import.
        return (status & 0x7F == 0 ? (status >> 8) & 0xFF : 128 + (status & 0x7F), CPUTime(usage))
    }
}
