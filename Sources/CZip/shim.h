// libzip (Debian's libzip-dev), for reading NumPy .npz archives.
#include <zip.h>
