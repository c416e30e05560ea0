/* The request -> class table of the tiny classes (sizeclass.h has the geometry). Entry n is
 * four times the smallest class whose usable bytes hold n (K: see sizeclass.h); U(s) is the
 * request of s bytes beyond the header, so in header mode every bound moves up by
 * HAK_HDR_SIZE. */
#include "sizeclass.h"

#define U(s) ((s) + HAK_HDR_SIZE)
#define K(c) (HAK_CLASS_SCALE * (c))

const uint8_t hak_class4_by_size[HAK_TINY_REQ_MAX + 1] = {
    [0 ... U(16)] = K(0),       [U(17)... U(32)] = K(1),    [U(33)... U(48)] = K(2),
    [U(49)... U(64)] = K(3),    [U(65)... U(80)] = K(4),    [U(81)... U(96)] = K(5),
    [U(97)... U(112)] = K(6),   [U(113)... U(128)] = K(7),  [U(129)... U(160)] = K(8),
    [U(161)... U(192)] = K(9),  [U(193)... U(224)] = K(10), [U(225)... U(256)] = K(11),
    [U(257)... U(320)] = K(12), [U(321)... U(384)] = K(13), [U(385)... U(448)] = K(14),
    [U(449)... U(512)] = K(15), [U(513)... U(640)] = K(16), [U(641)... U(768)] = K(17),
    [U(769)... U(896)] = K(18), [U(897)... U(1024)] = K(19),
};
_Static_assert(K(TINY_NUM_CLASSES - 1) <= UINT8_MAX, "a scaled tiny class fits the table");

_Static_assert(TINY_NUM_CLASSES == 20 && HAK_TINY_MAX == 1024,
               "the table covers the 20 tiny classes up to 1024 bytes");
