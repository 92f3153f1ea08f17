import CCrypto

/// A reusable SHA-256 context (OpenSSL EVP). Owns its `EVP_MD_CTX`.
final class Sha256 {
    private let context: OpaquePointer
    private let template: OpaquePointer?

    /// - Parameter prefix: bytes hashed before every message (fs-verity's padded salt); the
    ///   state after them is computed once and copied for each message.
    init(prefix: [UInt8] = []) {
        context = EVP_MD_CTX_new()!
        if prefix.isEmpty {
            template = nil
        } else {
            let state = EVP_MD_CTX_new()!
            EVP_DigestInit_ex(state, EVP_sha256(), nil)
            prefix.withUnsafeBytes { _ = EVP_DigestUpdate(state, $0.baseAddress, $0.count) }
            template = state
        }
    }

    deinit {
        EVP_MD_CTX_free(context)
        if let template { EVP_MD_CTX_free(template) }
    }

    /// SHA-256 of (prefix +) `bytes`, written into `output` at `offset` (32 bytes).
    func hash(_ bytes: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer, at offset: Int) {
        if let template {
            EVP_MD_CTX_copy_ex(context, template)
        } else {
            EVP_DigestInit_ex(context, EVP_sha256(), nil)
        }
        EVP_DigestUpdate(context, bytes.baseAddress, bytes.count)
        var length: UInt32 = 0
        EVP_DigestFinal_ex(
            context, output.baseAddress!.advanced(by: offset).assumingMemoryBound(to: UInt8.self), &length)
    }

    /// SHA-256 of `bytes` (no prefix), as a new array.
    static func digest(_ bytes: [UInt8]) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: 32)
        var length: UInt32 = 0
        bytes.withUnsafeBytes { input in
            out.withUnsafeMutableBytes {
                _ = EVP_Digest(
                    input.baseAddress, input.count, $0.baseAddress!.assumingMemoryBound(to: UInt8.self), &length,
                    EVP_sha256(), nil)
            }
        }
        return out
    }
}

/// SHA-256 of `bytes` (libcrypto).
public func sha256(_ bytes: [UInt8]) -> [UInt8] { Sha256.digest(bytes) }

/// A streaming SHA-256 (libcrypto), for digests of blobs read in pieces (OCI `sha256:` digests).
public final class SHA256Stream {
    private let context: OpaquePointer
    public private(set) var count: UInt64 = 0

    public init() {
        context = EVP_MD_CTX_new()!
        EVP_DigestInit_ex(context, EVP_sha256(), nil)
    }

    deinit { EVP_MD_CTX_free(context) }

    public func update(_ bytes: UnsafeRawBufferPointer) {
        guard bytes.count > 0 else { return }
        EVP_DigestUpdate(context, bytes.baseAddress, bytes.count)
        count += UInt64(bytes.count)
    }

    public func update(_ bytes: [UInt8]) { bytes.withUnsafeBytes { update($0) } }

    /// The digest of everything so far; the stream is done after this.
    public func finalize() -> [UInt8] {
        var out = [UInt8](repeating: 0, count: 32)
        var length: UInt32 = 0
        out.withUnsafeMutableBytes {
            _ = EVP_DigestFinal_ex(context, $0.baseAddress!.assumingMemoryBound(to: UInt8.self), &length)
        }
        return out
    }
}
