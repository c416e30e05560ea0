/* cache_thrash THREADS [SCALE]: cache-thrash-shaped active false sharing.
 *
 * Each of THREADS threads does 4,000 iterations (at SCALE 1): allocate an 8-byte object, write
 * every byte of it 50,000 times, free it. The threads allocate at the same time, so an
 * allocator that hands threads objects on one cache line makes every write a cache-line
 * transfer between cores; one that keeps each thread's objects apart costs only the writes.
 * The body: false_sharing.h. */
#include "false_sharing.h"

int main(int argc, char **argv) { return fs_main(argc, argv, "cache_thrash", false); }
