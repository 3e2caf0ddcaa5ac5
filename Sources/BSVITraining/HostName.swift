import Foundation

/// This machine's name from gethostname(2) rather than ProcessInfo.hostName, which may ask DNS
/// (slow or hanging on cluster nodes).
public func localHostName() -> String {
    var buffer = [CChar](repeating: 0, count: 256)
    guard gethostname(&buffer, buffer.count - 1) == 0 else { return "unknown-host" }
    return String(cString: buffer)
}
