import Foundation

extension BenchReport {
    var armNames: [String] {
        var names: [String] = []
        for result in results where !names.contains(result.arm) { names.append(result.arm) }
        return names
    }
    var workloads: [Workload] { Workload.allCases.filter { w in results.contains { $0.workload == w } } }
    var caches: [CacheState] { CacheState.allCases.filter { c in results.contains { $0.cache == c } } }

    func ratio(_ arm: String, _ workload: Workload, _ cache: CacheState) -> RatioEntry? {
        ratios.first { $0.arm == arm && $0.workload == workload && $0.cache == cache }
    }

    func cell(_ arm: String, _ workload: Workload, _ cache: CacheState) -> String {
        guard let result = result(arm, workload, cache) else { return "-" }
        var text = format(result.median)
        if let ratio = ratio(arm, workload, cache) {
            text += String(format: " %.2f× [%.2f–%.2f]", ratio.ratio, ratio.low, ratio.high)
        }
        return text
    }

    /// The terminal table: medians in seconds and the ratio to composefs with its 95 % interval.
    public var text: String {
        var lines: [String] = []
        lines.append(
            "\(system.source): \(system.entries) entries, kernel \(system.kernel), \(system.cpu) (\(system.cores) cores), \(system.runs) runs"
        )
        if let note = system.note { lines.append(note) }
        for cache in caches {
            lines.append("")
            lines.append("\(cache.rawValue) cache — median seconds, and × composefs [95 % CI]")
            let header = ["workload"] + armNames
            var rows = [header]
            rows += timeRows(cache)
            lines += padded(rows)
            lines.append("")
            lines.append(
                "\(cache.rawValue) cache — CPU seconds, median user + system (all CPUs busy, kernel workers included)")
            lines += padded([header] + cpuRows(cache))
        }
        if !density.isEmpty {
            lines.append("")
            lines.append("density — \(density[0].images) images at once; seconds for all, and per image")
            lines += padded(densityRows())
        }
        for skipped in skipped { lines.append("skipped \(skipped.arm): \(skipped.reason)") }
        lines.append(
            "images: "
                + images.map {
                    "\($0.arm) \(formatSize($0.bytes)) (built in \(String(format: "%.2f", $0.buildSeconds)) s)"
                }.joined(separator: ", "))
        return lines.joined(separator: "\n") + "\n"
    }

    /// A Markdown report: one table per cache state.
    public var markdown: String {
        var out = "# ovlcfs bench: \(system.source)\n\n"
        out +=
            "\(system.entries) entries, \(formatSize(system.fileBytes)) of files; kernel \(system.kernel); \(system.cpu), \(system.cores) cores; "
        out += "\(system.runs) runs per cell (interleaved), \(system.warmups) warm-up; \(system.date).\n"
        out += "Objects: \(system.objects).\n\n"
        if let note = system.note { out += "**\(note)**\n\n" }
        for cache in caches {
            out +=
                "## \(cache.rawValue) cache\n\nMedian seconds; in brackets the ratio to composefs with its 95 % bootstrap interval.\n\n"
            out += markdownTable([["workload"] + armNames] + timeRows(cache))
            out +=
                "CPU seconds, median user + system (for ls-lR, the ls process's; else the benchmark thread's), and in brackets all CPUs' busy time during the run (`/proc/stat`: kernel workers such as loop, dm-verity and fs-verity included).\n\n"
            out += markdownTable([["workload"] + armNames] + cpuRows(cache))
            let blocks = blockRows(cache)
            if !blocks.isEmpty {
                out +=
                    "Block-device reads per run, median requests / bytes by kind of device (`/sys/block/*/stat`).\n\n"
                out += markdownTable([["workload"] + armNames] + blocks)
            }
        }
        if !density.isEmpty {
            out += "## Density: \(density[0].images) images mounted at once\n\n"
            out +=
                "Seconds to mount, walk (`ls -lR` of each) and unmount all of them (median); per image: kernel objects counted during the run and memory from a dropped-caches baseline; in brackets the ratio to composefs.\n\n"
            out += markdownTable(densityRows())
        }
        out += "## Images\n\n| arm | size | build |\n|---|---:|---:|\n"
        for image in images {
            out += "| \(image.arm) | \(formatSize(image.bytes)) | \(String(format: "%.2f", image.buildSeconds)) s |\n"
        }
        for skipped in skipped { out += "\nSkipped \(skipped.arm): \(skipped.reason).\n" }
        return out
    }

    /// Rows of median seconds with ratios, per workload (mount adds its unmount).
    func timeRows(_ cache: CacheState) -> [[String]] {
        var rows: [[String]] = []
        for workload in workloads where workload != .density {
            rows.append([workload.rawValue] + armNames.map { cell($0, workload, cache) })
            if workload == .mount {
                let base = result("composefs", .mount, cache)?.unmountSamples.map(Statistics.median)
                rows.append(
                    ["umount"]
                        + armNames.map { arm in
                            guard let samples = result(arm, .mount, cache)?.unmountSamples else { return "-" }
                            let median = Statistics.median(samples)
                            guard let base, base > 0, arm != "composefs" else { return format(median) }
                            return format(median) + String(format: " %.2f×", median / base)
                        })
            }
        }
        return rows
    }

    /// Rows of median CPU seconds, user + system, per workload, and all CPUs' busy time.
    func cpuRows(_ cache: CacheState) -> [[String]] {
        workloads.filter { $0 != .density }.map { workload in
            [workload.rawValue]
                + armNames.map { arm in
                    guard let r = result(arm, workload, cache), !r.userSeconds.isEmpty else { return "-" }
                    let busy = r.busySeconds.map { " (all CPUs " + format(Statistics.median($0)) + ")" } ?? ""
                    return format(Statistics.median(r.userSeconds)) + " + " + format(Statistics.median(r.systemSeconds))
                        + busy
                }
        }
    }

    /// Rows of median block-device reads per run: `kind requests/bytes` for each kind of
    /// device that was read (none: no row).
    func blockRows(_ cache: CacheState) -> [[String]] {
        workloads.filter { $0 != .density }.compactMap { workload in
            let cells = armNames.map { arm -> String in
                guard let r = result(arm, workload, cache), let requests = r.blockReadRequests,
                    let bytes = r.blockReadBytes
                else { return "-" }
                let parts = requests.keys.sorted().compactMap { kind -> String? in
                    let count = Statistics.median(requests[kind] ?? [0])
                    guard count > 0 else { return nil }
                    let size = UInt64(Statistics.median(bytes[kind] ?? [0]))
                    return "\(kind) \(Int(count)) / \(formatSize(size))"
                }
                return parts.isEmpty ? "0" : parts.joined(separator: ", ")
            }
            return cells.allSatisfy { $0 == "-" } ? nil : [workload.rawValue] + cells
        }
    }

    /// One row per arm of the density run, ratios to composefs in brackets.
    func densityRows() -> [[String]] {
        let base = density.first { $0.arm == "composefs" }
        func cell(_ value: Double, _ baseValue: Double?, _ text: String) -> String {
            guard let baseValue, baseValue > 0 else { return text }
            return text + String(format: " [%.2f×]", value / baseValue)
        }
        var rows = [
            [
                "arm", "mount all", "walk all", "umount all", "CPU user+sys", "mounts", "loops", "dm", "filesystems",
                "inode+dentry slab", "all slab", "vmalloc+percpu", "page cache",
            ]
        ]
        for d in density {
            let (m, w, u) = (
                Statistics.median(d.mountSeconds), Statistics.median(d.walkSeconds), Statistics.median(d.umountSeconds)
            )
            let isBase = d.arm == "composefs"
            rows.append([
                d.arm,
                cell(m, isBase ? nil : base.map { Statistics.median($0.mountSeconds) }, format(m)),
                cell(w, isBase ? nil : base.map { Statistics.median($0.walkSeconds) }, format(w)),
                cell(u, isBase ? nil : base.map { Statistics.median($0.umountSeconds) }, format(u)),
                format(Statistics.median(d.userSeconds)) + " + " + format(Statistics.median(d.systemSeconds)),
                String(format: "%.2f", d.kernelObjects.mounts), String(format: "%.2f", d.kernelObjects.loopDevices),
                String(format: "%.2f", d.kernelObjects.dmDevices), String(format: "%.0f", d.kernelObjects.filesystems),
                cell(
                    d.memory.slabBytes, isBase ? nil : base?.memory.slabBytes,
                    formatSize(UInt64(max(0, d.memory.slabBytes)))),
                cell(
                    d.memory.slabTotalBytes, isBase ? nil : base?.memory.slabTotalBytes,
                    formatSize(UInt64(max(0, d.memory.slabTotalBytes)))),
                formatSize(UInt64(max(0, d.memory.vmallocAndPercpuBytes))),
                cell(
                    d.memory.pageCacheBytes, isBase ? nil : base?.memory.pageCacheBytes,
                    formatSize(UInt64(max(0, d.memory.pageCacheBytes)))),
            ])
        }
        return rows
    }

    /// A grouped bar chart: one panel per cache state, one group per workload, one bar per arm
    /// (median) with a min–max whisker; each group scaled to its own largest value, labelled.
    public var svg: String {
        let palette = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7"]
        let arms = armNames, loads = workloads.filter { $0 != .density }, states = caches
        let barWidth = 14.0, gap = 26.0
        let groupWidth = Double(arms.count) * barWidth + gap
        let panelHeight = 230.0, top = 60.0, left = 50.0
        let width = max(left + Double(loads.count) * groupWidth + 20, 760)
        let height = top + Double(states.count) * (panelHeight + 50) + 30 + Double(arms.count) * 18
        var s = """
            <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(width))" height="\(Int(height))" viewBox="0 0 \(Int(width)) \(Int(height))" font-family="sans-serif" font-size="11">
            <rect width="100%" height="100%" fill="white"/>
            <text x="\(left)" y="24" font-size="15" font-weight="bold">ovlcfs bench — \(escape(URL(fileURLWithPath: system.source).lastPathComponent)) (\(system.entries) entries)</text>
            <text x="\(left)" y="42" fill="#555">median seconds, whiskers min–max, \(system.runs) runs; each workload scaled to its own maximum</text>

            """
        for (p, cache) in states.enumerated() {
            let y0 = top + Double(p) * (panelHeight + 50) + 20
            let base = y0 + panelHeight
            s += "<text x=\"\(left)\" y=\"\(y0 - 4)\" font-weight=\"bold\">\(cache.rawValue) cache</text>\n"
            s += "<line x1=\"\(left - 5)\" y1=\"\(base)\" x2=\"\(width - 20)\" y2=\"\(base)\" stroke=\"#333\"/>\n"
            for (g, workload) in loads.enumerated() {
                let x0 = left + Double(g) * groupWidth
                let maxValue = arms.compactMap { result($0, workload, cache)?.max }.max() ?? 1
                for (a, arm) in arms.enumerated() {
                    guard let r = result(arm, workload, cache), maxValue > 0 else { continue }
                    let scale = (panelHeight - 30) / maxValue
                    let x = x0 + Double(a) * barWidth
                    let h = r.median * scale
                    s +=
                        "<rect x=\"\(x)\" y=\"\(base - h)\" width=\"\(barWidth - 2)\" height=\"\(h)\" fill=\"\(palette[a % palette.count])\"><title>\(arm) \(workload.rawValue) \(cache.rawValue): median \(format(r.median)) s</title></rect>\n"
                    let cx = x + (barWidth - 2) / 2
                    s +=
                        "<line x1=\"\(cx)\" y1=\"\(base - r.min * scale)\" x2=\"\(cx)\" y2=\"\(base - r.max * scale)\" stroke=\"#222\"/>\n"
                }
                s += "<text x=\"\(x0)\" y=\"\(base + 14)\">\(workload.rawValue)</text>\n"
                s += "<text x=\"\(x0)\" y=\"\(y0 + 10)\" fill=\"#555\">max \(format(maxValue)) s</text>\n"
            }
        }
        let legendTop = top + Double(states.count) * (panelHeight + 50) + 10
        for (a, arm) in arms.enumerated() {
            let y = legendTop + Double(a) * 18
            s += "<rect x=\"\(left)\" y=\"\(y)\" width=\"12\" height=\"12\" fill=\"\(palette[a % palette.count])\"/>"
            s += "<text x=\"\(left + 18)\" y=\"\(y + 10)\">\(escape(arm))</text>\n"
        }
        return s + "</svg>\n"
    }
}

/// Rows as aligned text columns.
func padded(_ rows: [[String]]) -> [String] {
    guard let first = rows.first else { return [] }
    let widths = first.indices.map { column in rows.map { $0[column].count }.max()! }
    return rows.map { row in
        row.enumerated().map { $0.element.padding(toLength: widths[$0.offset], withPad: " ", startingAt: 0) }
            .joined(separator: "  ")
    }
}

/// Rows as a Markdown table (the first is the header; numbers right-aligned).
func markdownTable(_ rows: [[String]]) -> String {
    guard let header = rows.first else { return "" }
    var out = "| " + header.joined(separator: " | ") + " |\n"
    out += "|---|" + header.dropFirst().map { _ in "---:" }.joined(separator: "|") + "|\n"
    for row in rows.dropFirst() { out += "| " + row.joined(separator: " | ") + " |\n" }
    return out + "\n"
}

func format(_ seconds: Double) -> String {
    seconds >= 10
        ? String(format: "%.1f", seconds)
        : seconds >= 0.1 ? String(format: "%.3f", seconds) : String(format: "%.4f", seconds)
}

func formatSize(_ bytes: UInt64) -> String {
    bytes >= 1 << 20
        ? String(format: "%.1f MiB", Double(bytes) / 1048576) : String(format: "%.1f KiB", Double(bytes) / 1024)
}

func escape(_ text: String) -> String {
    text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(
        of: ">", with: "&gt;")
}
