// Every shim is a static inline function in the header; SwiftPM needs one source file.
#include "CMPIShims.h"
