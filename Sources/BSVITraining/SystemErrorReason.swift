import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Why a Foundation file call failed, in the system's words ("Not a directory", "Permission
/// denied"): Foundation's own text is "The operation could not be completed", and the POSIX
/// error under it says why.
func systemReason(_ error: Error) -> String {
    guard let posix = (error as NSError).userInfo[NSUnderlyingErrorKey] as? NSError,
          posix.domain == NSPOSIXErrorDomain else { return "\(error)" }
    return String(cString: strerror(Int32(posix.code)))
}
