/* cache_scratch THREADS [SCALE]: cache-scratch-shaped passive false sharing.
 *
 * The main thread allocates THREADS 8-byte objects one after the other (so neighbours share
 * cache lines) and gives one to each thread. A thread frees the object it was given, then does
 * 4,000 iterations (at SCALE 1): allocate an 8-byte object, write every byte of it 50,000 times,
 * free it. An allocator that hands a thread back the block it just freed, the main thread's,
 * makes the threads write one cache line; one that keeps a thread's frees of foreign blocks
 * away from its own allocations costs only the writes. The body: false_sharing.h. */
#include "false_sharing.h"

int main(int argc, char **argv) { return fs_main(argc, argv, "cache_scratch", true); }
