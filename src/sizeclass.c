/* The request -> class table of the tiny classes (sizeclass.h has the geometry). Entry n is the
 * smallest class whose usable bytes hold n: U(s) is the request of s bytes beyond the header,
 * so in header mode every bound moves up by HAK_HDR_SIZE. */
#include "sizeclass.h"

#define U(s) ((s) + HAK_HDR_SIZE)

const uint8_t hak_class_by_size[HAK_TINY_REQ_MAX + 1] = {
    [0 ... U(16)] = 0,       [U(17)... U(32)] = 1,    [U(33)... U(48)] = 2,
    [U(49)... U(64)] = 3,    [U(65)... U(80)] = 4,    [U(81)... U(96)] = 5,
    [U(97)... U(112)] = 6,   [U(113)... U(128)] = 7,  [U(129)... U(160)] = 8,
    [U(161)... U(192)] = 9,  [U(193)... U(224)] = 10, [U(225)... U(256)] = 11,
    [U(257)... U(320)] = 12, [U(321)... U(384)] = 13, [U(385)... U(448)] = 14,
    [U(449)... U(512)] = 15, [U(513)... U(640)] = 16, [U(641)... U(768)] = 17,
    [U(769)... U(896)] = 18, [U(897)... U(1024)] = 19,
};

_Static_assert(TINY_NUM_CLASSES == 20 && HAK_TINY_MAX == 1024,
               "the table covers the 20 tiny classes up to 1024 bytes");
