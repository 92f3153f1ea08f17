import Foundation

/// Benchmarks of models that differ in one parameter (the size of their largest directory),
/// and how each arm's ratio to composefs follows it.
public struct SweepReport: Sendable, Codable {
    public struct Point: Sendable, Codable {
        public var value: Int
        public var report: BenchReport

        public init(value: Int, report: BenchReport) {
            self.value = value
            self.report = report
        }
    }

    public var parameter: String
    public var points: [Point] = []

    public init(parameter: String) { self.parameter = parameter }

    var arms: [String] { points.first?.report.armNames.filter { $0 != "composefs" } ?? [] }
    var workloads: [Workload] { points.first?.report.workloads.filter(\.isTree) ?? [] }
    var caches: [CacheState] { points.first?.report.caches ?? [] }

    /// The ratio of `arm` to composefs at each point.
    func series(_ arm: String, _ workload: Workload, _ cache: CacheState) -> [(Int, Double)] {
        points.compactMap { point in point.report.ratio(arm, workload, cache).map { (point.value, $0.ratio) } }
    }

    public var text: String {
        var lines = ["sweep over the \(parameter): ratio to composefs (median ÷ median)"]
        for cache in caches {
            for workload in workloads {
                lines.append("")
                lines.append("\(cache.rawValue) \(workload.rawValue)")
                lines.append(
                    (["size"] + arms).map { $0.padding(toLength: 24, withPad: " ", startingAt: 0) }.joined())
                for point in points {
                    let cells = arms.map { arm in
                        point.report.ratio(arm, workload, cache).map { String(format: "%.2f×", $0.ratio) } ?? "-"
                    }
                    lines.append(
                        ([String(point.value)] + cells).map { $0.padding(toLength: 24, withPad: " ", startingAt: 0) }
                            .joined())
                }
            }
        }
        return lines.joined(separator: "\n") + "\n"
    }

    public var markdown: String {
        var out = "# ovlcfs bench sweep: \(parameter)\n\n"
        if let system = points.first?.report.system {
            out +=
                "Kernel \(system.kernel); \(system.cpu), \(system.cores) cores; \(system.runs) runs per cell; \(system.date).\n\n"
        }
        out += "Ratio of each arm's median to composefs's median (95 % bootstrap interval).\n\n"
        for cache in caches {
            for workload in workloads {
                out += "## \(cache.rawValue) \(workload.rawValue)\n\n"
                out += "| \(parameter) | composefs (s) | " + arms.joined(separator: " | ") + " |\n"
                out += "|---:|---:|" + arms.map { _ in "---:" }.joined(separator: "|") + "|\n"
                for point in points {
                    let base = point.report.result("composefs", workload, cache).map { format($0.median) } ?? "-"
                    let cells = arms.map { arm in
                        point.report.ratio(arm, workload, cache).map {
                            String(format: "%.2f× [%.2f–%.2f]", $0.ratio, $0.low, $0.high)
                        } ?? "-"
                    }
                    out += "| \(point.value) | \(base) | " + cells.joined(separator: " | ") + " |\n"
                }
                out += "\n"
            }
        }
        return out
    }

    /// Line charts, one panel per workload (rows) and cache state (columns): ratio to composefs
    /// against the parameter on a log scale, one line per arm, 1× marked.
    public var svg: String {
        let palette = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7"]
        let panelWidth = 340.0, panelHeight = 200.0, left = 60.0, top = 60.0, gapX = 70.0, gapY = 60.0
        let width = left + Double(caches.count) * (panelWidth + gapX) + 20
        let height = top + Double(workloads.count) * (panelHeight + gapY) + Double(arms.count) * 18 + 20
        let values = points.map { Double($0.value) }
        let xMin = log10(values.min() ?? 1), xMax = max(log10(values.max() ?? 10), xMin + 1)
        var s = """
            <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(width))" height="\(Int(height))" viewBox="0 0 \(Int(width)) \(Int(height))" font-family="sans-serif" font-size="11">
            <rect width="100%" height="100%" fill="white"/>
            <text x="\(left)" y="24" font-size="15" font-weight="bold">ovlcfs bench sweep — ratio to composefs against the \(escape(parameter))</text>
            <text x="\(left)" y="42" fill="#555">median ÷ composefs median; log-scale x; dashed line: 1× (as fast as composefs)</text>

            """
        for (row, workload) in workloads.enumerated() {
            for (column, cache) in caches.enumerated() {
                let x0 = left + Double(column) * (panelWidth + gapX)
                let y0 = top + Double(row) * (panelHeight + gapY) + 10
                let all = arms.flatMap { series($0, workload, cache).map(\.1) }
                let yMax = max((all.max() ?? 1) * 1.1, 1.2)
                let yMin = min(all.min() ?? 1, 1) * 0.9
                func px(_ v: Double) -> Double { x0 + (log10(v) - xMin) / (xMax - xMin) * panelWidth }
                func py(_ r: Double) -> Double { y0 + panelHeight - (r - yMin) / (yMax - yMin) * panelHeight }
                s +=
                    "<text x=\"\(x0)\" y=\"\(y0 - 6)\" font-weight=\"bold\">\(cache.rawValue) \(workload.rawValue)</text>\n"
                s +=
                    "<rect x=\"\(x0)\" y=\"\(y0)\" width=\"\(panelWidth)\" height=\"\(panelHeight)\" fill=\"none\" stroke=\"#999\"/>\n"
                s +=
                    "<line x1=\"\(x0)\" y1=\"\(py(1))\" x2=\"\(x0 + panelWidth)\" y2=\"\(py(1))\" stroke=\"#555\" stroke-dasharray=\"4 3\"/>\n"
                for tick in [yMin, (yMin + yMax) / 2, yMax] {
                    s +=
                        "<text x=\"\(x0 - 6)\" y=\"\(py(tick) + 4)\" text-anchor=\"end\">\(String(format: "%.2f×", tick))</text>\n"
                }
                for value in values {
                    s +=
                        "<text x=\"\(px(value))\" y=\"\(y0 + panelHeight + 14)\" text-anchor=\"middle\">\(Int(value))</text>\n"
                }
                for (index, arm) in arms.enumerated() {
                    let line = series(arm, workload, cache)
                    guard !line.isEmpty else { continue }
                    let color = palette[index % palette.count]
                    let pointsText = line.map { "\(px(Double($0.0))),\(py($0.1))" }.joined(separator: " ")
                    s += "<polyline points=\"\(pointsText)\" fill=\"none\" stroke=\"\(color)\" stroke-width=\"2\"/>\n"
                    for (value, ratio) in line {
                        s +=
                            "<circle cx=\"\(px(Double(value)))\" cy=\"\(py(ratio))\" r=\"3\" fill=\"\(color)\"><title>\(escape(arm)) \(workload.rawValue) \(cache.rawValue) at \(value): \(String(format: "%.2f×", ratio))</title></circle>\n"
                    }
                }
            }
        }
        let legendTop = top + Double(workloads.count) * (panelHeight + gapY) + 5
        for (index, arm) in arms.enumerated() {
            let y = legendTop + Double(index) * 18
            s +=
                "<rect x=\"\(left)\" y=\"\(y)\" width=\"12\" height=\"12\" fill=\"\(palette[index % palette.count])\"/>"
            s += "<text x=\"\(left + 18)\" y=\"\(y + 10)\">\(escape(arm))</text>\n"
        }
        return s + "</svg>\n"
    }
}
