/* gcc cannot build CORDON_TRUSTED code: it must say so in the intended words. */
#include <cordon/cordon.h>
CORDON_TRUSTED int sign(const char* msg);
