/* A bounded queue that hands blocks from producer threads to consumer threads (a mutex and two
 * condition variables; nothing allocated, so it never calls the allocator under test). Used by
 * the cross-thread stress test and the triage churn workload. */
#ifndef T_HANDOFF_H
#define T_HANDOFF_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#define T_HANDOFF_CAP 256

typedef struct t_item_s {
  void *p;
  size_t size;
  uint64_t tag; /* the producer's: serial number, fill byte */
} t_item_t;

typedef struct t_handoff_s {
  pthread_mutex_t lock;
  pthread_cond_t not_empty; /* an item arrived or the queue closed */
  pthread_cond_t not_full;
  t_item_t items[T_HANDOFF_CAP]; /* ring; lock */
  size_t head, count;            /* lock */
  int closed;                    /* lock */
} t_handoff_t;

#define T_HANDOFF_INIT \
  {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, PTHREAD_COND_INITIALIZER, {{0}}, 0, 0, 0}

/* Waits while the queue is full. */
static inline void t_handoff_put(t_handoff_t *q, t_item_t it) {
  pthread_mutex_lock(&q->lock);
  while (q->count == T_HANDOFF_CAP) pthread_cond_wait(&q->not_full, &q->lock);
  q->items[(q->head + q->count++) % T_HANDOFF_CAP] = it;
  pthread_cond_signal(&q->not_empty);
  pthread_mutex_unlock(&q->lock);
}

/* Waits for an item; returns 0 once the queue is closed and empty. */
static inline int t_handoff_take(t_handoff_t *q, t_item_t *out) {
  pthread_mutex_lock(&q->lock);
  while (q->count == 0 && !q->closed) pthread_cond_wait(&q->not_empty, &q->lock);
  int have = q->count > 0;
  if (have) {
    *out = q->items[q->head];
    q->head = (q->head + 1) % T_HANDOFF_CAP;
    q->count--;
    pthread_cond_signal(&q->not_full);
  }
  pthread_mutex_unlock(&q->lock);
  return have;
}

/* No more items: consumers drain what is queued, then take() returns 0. */
static inline void t_handoff_close(t_handoff_t *q) {
  pthread_mutex_lock(&q->lock);
  q->closed = 1;
  pthread_cond_broadcast(&q->not_empty);
  pthread_mutex_unlock(&q->lock);
}

#endif /* T_HANDOFF_H */
