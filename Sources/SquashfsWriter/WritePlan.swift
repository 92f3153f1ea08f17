import CSquashfsShim
import ImageModel

/// The order a squashfs image's inodes and listings are written in, and their numbers:
/// everything about the inode and directory tables that does not depend on their bytes, made
/// before either is written (and kept in `let`s, which the writers read without the run-time
/// exclusivity checks a class's `var`s cost).
struct WritePlan {
    enum Step {
        case inode(EntryID)
        case listing(EntryID)
    }

    /// Inodes in write order (each inode once, at its first entry).
    private(set) var order: [EntryID] = []
    /// Per inode id: its number, 1…N in write order (the root, written last, is N).
    private(set) var numbers: [UInt32]
    /// What to write, in order: inodes, and each directory's listing after its children's
    /// inodes and before the directory's own.
    private(set) var steps: [Step] = []

    init(_ layer: Image, order inodeOrder: SquashfsOptions.InodeOrder) {
        numbers = [UInt32](repeating: 0, count: layer.inodeCount)
        order.reserveCapacity(layer.inodeCount)
        switch inodeOrder {
        case .directories: planDirectoryGroups(layer)
        case .name: planPostOrder(layer, subdirectoriesFirst: false)
        case .grouped: planPostOrder(layer, subdirectoriesFirst: true)
        }
        emit(.root, layer)
    }

    /// Appends the inode of `entry` unless its inode (a hard link's) is already planned.
    private mutating func emit(_ entry: EntryID, _ layer: Image) {
        let id = layer.inodeID(of: entry)
        guard numbers[id.index] == 0 else { return }
        order.append(entry)
        numbers[id.index] = UInt32(order.count)
        steps.append(.inode(entry))
    }

    /// Inode order `directories`: per directory, its subdirectories' contents first, then all
    /// its children together in name order, then its listing.
    private mutating func planDirectoryGroups(_ layer: Image) {
        var stack: [(EntryID, Bool)] = [(.root, false)]
        while let (directory, expanded) = stack.popLast() {
            let children = layer.children(of: directory)
            if expanded {
                for child in children { emit(child, layer) }
                steps.append(.listing(directory))
            } else {
                stack.append((directory, true))
                for child in children.reversed() where layer.fileType(of: child) == .directory {
                    stack.append((child, false))
                }
            }
        }
    }

    /// Inode orders `name` (children in name order, each subtree before the next sibling) and
    /// `grouped` (a directory's subdirectory subtrees first, then its other entries); each
    /// directory's listing and inode come after its subtree. The root is left to the caller.
    private mutating func planPostOrder(_ layer: Image, subdirectoriesFirst: Bool) {
        var stack: [(EntryID, Bool)] = [(.root, false)]
        while let (entry, expanded) = stack.popLast() {
            let isDirectory = layer.fileType(of: entry) == .directory
            guard isDirectory else {
                emit(entry, layer)
                continue
            }
            if expanded {
                steps.append(.listing(entry))
                if entry != .root { emit(entry, layer) }
                continue
            }
            stack.append((entry, true))
            let children = layer.children(of: entry)
            if subdirectoriesFirst {
                // Popped in reverse: subdirectories (with their subtrees) first, then the rest.
                for child in children.reversed() where layer.fileType(of: child) != .directory {
                    stack.append((child, false))
                }
                for child in children.reversed() where layer.fileType(of: child) == .directory {
                    stack.append((child, false))
                }
            } else {
                for child in children.reversed() { stack.append((child, false)) }
            }
        }
    }
}
