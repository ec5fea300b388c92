// A library as a partial-RELRO link leaves it (.got.plt writable), whose
// section header table is then stripped (sstrip, some packers and
// post-link tools; ld.so never needs it). Its call to strlen goes through
// its PLT and a writable .got.plt slot.
#include <string.h>
size_t odd_len(const char* s) { return strlen(s); }
