import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Why a Foundation file call failed, in the system's words ("Not a directory", "Permission
/// denied"): Foundation's own text is "The operation could not be completed", and the POSIX
/// error under it says why.
func systemReason(_ error: Error) -> String {
    let ns = error as NSError
    for candidate in [ns.userInfo[NSUnderlyingErrorKey] as? Error, error].compactMap({ $0 }) {
        let posix = candidate as NSError
        if posix.domain == NSPOSIXErrorDomain { return String(cString: strerror(Int32(posix.code))) }
    }
    // Foundation's own sentence ("The volume is read only."), not its userInfo dump.
    return ns.localizedDescription
}
