import Glibc

/// CPU time, user and system apart, in seconds.
public struct CPUTime: Sendable, Equatable, Codable {
    public var user: Double
    public var system: Double

    public init(user: Double, system: Double) {
        self.user = user
        self.system = system
    }

    public static let zero = CPUTime(user: 0, system: 0)

    /// The calling thread's CPU time so far (`getrusage(RUSAGE_THREAD)`): what in-process work
    /// costs, the kernel's share (system calls, page faults, filesystem code) included.
    public static func thisThread() -> CPUTime {
        var usage = rusage()
        getrusage(__rusage_who_t(1), &usage)  // RUSAGE_THREAD (a GNU name Swift does not import)
        return CPUTime(usage)
    }

    init(_ usage: rusage) {
        user = Double(usage.ru_utime.tv_sec) + Double(usage.ru_utime.tv_usec) / 1e6
        system = Double(usage.ru_stime.tv_sec) + Double(usage.ru_stime.tv_usec) / 1e6
    }

    public static func - (a: CPUTime, b: CPUTime) -> CPUTime {
        CPUTime(user: a.user - b.user, system: a.system - b.system)
    }

    public static func + (a: CPUTime, b: CPUTime) -> CPUTime {
        CPUTime(user: a.user + b.user, system: a.system + b.system)
    }
}
