import Foundation
import MountDriver

/// What a test that mounts through the driver needs: a temporary directory with `objects/` and
/// `mnt/`, and a ``MountDriver`` keeping its records in the directory's `state/`, so the test
/// never touches /run/ovlcfs. Call `tearDown()` in a `defer`: it unmounts whatever the driver
/// mounted (also when the test failed) and removes the directory.
public final class MountFixture {
    public let dir: TemporaryDirectory
    public let driver: MountDriver

    public init() throws {
        dir = try TemporaryDirectory()
        driver = MountDriver(stateDirectory: dir.path("state"))
        try FileManager.default.createDirectory(atPath: dir.path("objects"), withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: dir.path("mnt"), withIntermediateDirectories: true)
    }

    public var objects: String { dir.path("objects") }
    public var mountPoint: String { dir.path("mnt") }

    public func tearDown() {
        _ = try? driver.unmountAll()
        dir.cleanup()
    }
}
