import Foundation
import Glibc
import SystemPackage

/// Reads a file descriptor front to back.
public final class FileSource: ByteSource {
    public let descriptor: FileDescriptor
    public let path: String
    private let owned: Bool

    /// Reads `descriptor` (closed with the source when `owned`).
    public init(descriptor: FileDescriptor, path: String, owned: Bool = true) {
        self.descriptor = descriptor
        self.path = path
        self.owned = owned
    }

    deinit { if owned { try? descriptor.close() } }

    public func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        do {
            return try descriptor.read(into: buffer, retryOnInterrupt: true)
        } catch {
            throw ArchiveError(operation: "read", message: "\(path): \(error)")
        }
    }
}

/// The data of the current entry of an archive (a blob inside an `oci-archive:` tar).
public final class EntryDataSource: ByteSource {
    private let reader: ArchiveReader
    public init(reader: ArchiveReader) { self.reader = reader }
    public func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int { try reader.read(into: buffer) }
}

/// A source that first yields `prefix` (bytes already read from `inner` to sniff them), then
/// the rest of `inner`.
public final class PrefixedSource: ByteSource {
    private var prefix: [UInt8]
    private var offset = 0
    private let inner: any ByteSource
    public init(prefix: [UInt8], then inner: any ByteSource) {
        self.prefix = prefix
        self.inner = inner
    }
    public func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        guard offset < prefix.count else { return try inner.read(into: buffer) }
        let count = min(buffer.count, prefix.count - offset)
        prefix.withUnsafeBytes {
            buffer.copyMemory(from: UnsafeRawBufferPointer(rebasing: $0[offset..<offset + count]))
        }
        offset += count
        if offset == prefix.count { prefix = [] }
        return count
    }
}

extension ByteSource {
    /// Up to `count` bytes from the front (fewer only at the end).
    public func readPrefix(_ count: Int) throws -> [UInt8] {
        var out = [UInt8](repeating: 0, count: count)
        var filled = 0
        while filled < count {
            let n = try out.withUnsafeMutableBytes {
                try read(into: UnsafeMutableRawBufferPointer(rebasing: $0[filled...]))
            }
            if n == 0 { break }
            filled += n
        }
        return Array(out[0..<filled])
    }
}

/// A source that shows every byte it reads to `observe` (to hash a stream as it goes by).
public final class ObservedSource: ByteSource {
    private let inner: any ByteSource
    private let observe: (UnsafeRawBufferPointer) -> Void
    public init(_ inner: any ByteSource, observe: @escaping (UnsafeRawBufferPointer) -> Void) {
        self.inner = inner
        self.observe = observe
    }
    public func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        let count = try inner.read(into: buffer)
        observe(UnsafeRawBufferPointer(rebasing: buffer[0..<count]))
        return count
    }
}

extension ByteSource {
    /// Everything left, or an error once it passes `limit` bytes.
    public func readAll(limit: Int, name: String) throws -> [UInt8] {
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 << 10)
        while true {
            let count = try chunk.withUnsafeMutableBytes { try read(into: $0) }
            if count == 0 { return out }
            guard out.count + count <= limit else {
                throw ArchiveError(operation: "read", message: "\(name) is larger than \(limit) bytes")
            }
            out += chunk[0..<count]
        }
    }
}

/// A bounded queue of byte chunks between two threads: a producer (decompressing a blob, say)
/// `send`s and `close`s; the consumer reads it as a ``ByteSource``. Either side can stop the
/// other: `cancel()` makes the producer's next `send` throw.
public final class ChunkChannel: ByteSource, @unchecked Sendable {
    private let condition = NSCondition()
    private var chunks: [[UInt8]] = []
    private var current: [UInt8] = []
    private var currentOffset = 0
    private var closed = false
    private var failure: (any Error)?
    private var cancelled = false
    private let capacity: Int

    public struct Cancelled: Error {}

    /// A channel holding at most `capacity` chunks in flight.
    public init(capacity: Int = 8) { self.capacity = capacity }

    /// Queues a copy of `bytes`, waiting while the channel is full.
    public func send(_ bytes: UnsafeRawBufferPointer) throws {
        guard bytes.count > 0 else { return }
        let chunk = [UInt8](bytes)
        condition.lock()
        defer { condition.unlock() }
        while chunks.count >= capacity && !cancelled { condition.wait() }
        if cancelled { throw Cancelled() }
        chunks.append(chunk)
        condition.broadcast()
    }

    /// Ends the stream: the consumer reads to the end, then gets `error` (if any).
    public func close(error: (any Error)? = nil) {
        condition.lock()
        closed = true
        failure = error
        condition.broadcast()
        condition.unlock()
    }

    /// Stops the producer (its next `send` throws) and drops what is queued.
    public func cancel() {
        condition.lock()
        cancelled = true
        chunks = []
        condition.broadcast()
        condition.unlock()
    }

    public func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        if currentOffset == current.count {
            condition.lock()
            while chunks.isEmpty && !closed && !cancelled { condition.wait() }
            if chunks.isEmpty {
                let failure = self.failure
                condition.unlock()
                if let failure { throw failure }
                return 0
            }
            current = chunks.removeFirst()
            currentOffset = 0
            condition.broadcast()
            condition.unlock()
        }
        let count = min(buffer.count, current.count - currentOffset)
        current.withUnsafeBytes {
            buffer.copyMemory(from: UnsafeRawBufferPointer(rebasing: $0[currentOffset..<currentOffset + count]))
        }
        currentOffset += count
        return count
    }

    /// Reads and drops everything left (so the producer can finish).
    public func drain() throws {
        var scratch = [UInt8](repeating: 0, count: 64 << 10)
        while try scratch.withUnsafeMutableBytes({ try read(into: $0) }) > 0 {}
    }
}
